// codes.glsl: one block of 32 of a quantized weight row as integer codes,
// for the int8 matmul (mul_mat_q8.comp). Included after dequant.glsl (uses
// w_word, w_f16, w_i8 and its block helpers q4_block, q4k_block), never
// compiled alone.
//
//   block_codes c = decode_codes(row * pc.row_bytes, b);
//
// The block's value j is dw * sc[j / 16] * code[j] + mw * (activation
// offset), exactly as compute/cpu/matmul_scalar.cc decodes it (decode()),
// so the integer kernel computes what the CPU's does: per block
// float(sum(code * q_x) per half * sc) * (dw * d_x) + mw * s_x. The codes
// are packed 4 signed bytes to a word (element j in byte j % 4 of word j / 4)
// for OpSDot or its emulation.

struct block_codes {
  uint c[8];
  float dw;
  float mw;
  int sc0;  // multiplies elements 0..15
  int sc1;  // elements 16..31
};

block_codes decode_codes(uint row, uint b) {
  block_codes o;
  o.mw = 0.0;
  o.sc0 = 1;
  o.sc1 = 1;
#if defined(DATA_A_Q8_0)
  const uint base = row + 34u * b;
  for (uint w = 0; w < 8u; ++w) o.c[w] = w_word(base + 2u + 4u * w);
  o.dw = w_f16(base);
#elif defined(DATA_A_Q4_0) || defined(DATA_A_Q4_1)
  uint qs;
  q4_block(row, b, o.dw, o.mw, qs);
  // Byte j: element j (low nibble) and j + 16 (high nibble).
  for (uint w = 0; w < 4u; ++w) {
    const uint word = w_word(qs + 4u * w);
    o.c[w] = word & 0x0f0f0f0fu;
    o.c[4u + w] = (word >> 4) & 0x0f0f0f0fu;
  }
#elif defined(DATA_A_Q4_K)
  float offset;
  uint qs, shift;
  q4k_block(row, b, o.dw, offset, qs, shift);
  o.mw = -offset;
  for (uint w = 0; w < 8u; ++w) o.c[w] = (w_word(qs + 4u * w) >> shift) & 0x0f0f0f0fu;
#elif defined(DATA_A_Q6_K)
  const uint base = row + (b >> 3) * 210u;
  const uint sub = b & 7u;
  const uint h = sub >> 2, r = sub & 3u;
  o.dw = w_f16(base + 208u);
  o.sc0 = w_i8(base + 192u + 8u * h + 2u * r);
  o.sc1 = w_i8(base + 192u + 8u * h + 2u * r + 1u);
  const uint ql = base + 64u * h + 32u * (r & 1u), qh = base + 128u + 32u * h;
  for (uint w = 0; w < 8u; ++w) {
    const uint q = ((w_word(ql + 4u * w) >> (r < 2u ? 0u : 4u)) & 0x0f0f0f0fu) |
                   (((w_word(qh + 4u * w) >> (2u * r)) & 0x03030303u) << 4);
    // Each byte v in 0..63 becomes v - 32 as a signed byte: flip bit 5, and
    // set bits 6 and 7 where v < 32 (no carries between bytes).
    o.c[w] = (q ^ 0x20202020u) | (((~q >> 5) & 0x01010101u) * 0xc0u);
  }
#else
#error "codes.glsl: define DATA_A_Q8_0, Q4_0, Q4_1, Q4_K or Q6_K"
#endif
  return o;
}
