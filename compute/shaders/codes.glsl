// codes.glsl: one block of 32 of a quantized weight row as integer codes,
// for the int8 matmul (mul_mat_q8.comp). Included after dequant.glsl (uses
// w_word, w_u8, w_f16), never compiled alone.
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

#if defined(DATA_A_Q8_0)
block_codes decode_codes(uint row, uint b) {
  block_codes o;
  const uint base = row + 34u * b;
  for (uint w = 0; w < 8u; ++w) o.c[w] = w_word(base + 2u + 4u * w);
  o.dw = w_f16(base);
  o.mw = 0.0;
  o.sc0 = 1;
  o.sc1 = 1;
  return o;
}
#elif defined(DATA_A_Q4_0) || defined(DATA_A_Q4_1)
block_codes decode_codes(uint row, uint b) {
  block_codes o;
#if defined(DATA_A_Q4_0)
  const uint base = row + 18u * b;
  o.dw = w_f16(base);
  o.mw = -8.0 * o.dw;
  const uint qs = base + 2u;
#else
  const uint base = row + 20u * b;
  const vec2 dm = unpackHalf2x16(w_word(base));
  o.dw = dm.x;
  o.mw = dm.y;
  const uint qs = base + 4u;
#endif
  // Byte j: element j (low nibble) and j + 16 (high nibble).
  for (uint w = 0; w < 4u; ++w) {
    const uint word = w_word(qs + 4u * w);
    o.c[w] = word & 0x0f0f0f0fu;
    o.c[4u + w] = (word >> 4) & 0x0f0f0f0fu;
  }
  o.sc0 = 1;
  o.sc1 = 1;
  return o;
}
#elif defined(DATA_A_Q4_K)
block_codes decode_codes(uint row, uint b) {
  block_codes o;
  const uint base = row + (b >> 3) * 144u;
  const uint sub = b & 7u;
  const vec2 dm = unpackHalf2x16(w_word(base));
  uint sc, m;
  const uint s = base + 4u;
  if (sub < 4u) {
    sc = w_u8(s + sub) & 63u;
    m = w_u8(s + sub + 4u) & 63u;
  } else {
    sc = (w_u8(s + sub + 4u) & 15u) | ((w_u8(s + sub - 4u) >> 6) << 4);
    m = (w_u8(s + sub + 4u) >> 4) | ((w_u8(s + sub) >> 6) << 4);
  }
  o.dw = dm.x * float(sc);
  o.mw = -dm.y * float(m);
  // Chunk sub / 2 of 32 bytes: low nibbles are sub-block 2c, high 2c + 1.
  const uint o32 = base + 16u + 32u * (sub >> 1), shift = 4u * (sub & 1u);
  for (uint w = 0; w < 8u; ++w) o.c[w] = (w_word(o32 + 4u * w) >> shift) & 0x0f0f0f0fu;
  o.sc0 = 1;
  o.sc1 = 1;
  return o;
}
#elif defined(DATA_A_Q6_K)
block_codes decode_codes(uint row, uint b) {
  block_codes o;
  const uint base = row + (b >> 3) * 210u;
  const uint sub = b & 7u;
  const uint h = sub >> 2, r = sub & 3u;
  o.dw = w_f16(base + 208u);
  o.mw = 0.0;
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
  return o;
}
#else
#error "codes.glsl: define DATA_A_Q8_0, Q4_0, Q4_1, Q4_K or Q6_K"
#endif
