// dequant.glsl: one element of a weight row in any ggml type the CPU engine
// reads, from raw bytes. Included, never compiled on its own.
//
// The including shader declares the weights as a buffer of 32-bit words named
// `w_data` (portable: no 8- or 16-bit storage feature needed) and picks the
// type with one define: DATA_A_F32, DATA_A_F16, DATA_A_BF16, DATA_A_Q8_0,
// DATA_A_Q4_0, DATA_A_Q4_1, DATA_A_Q4_K or DATA_A_Q6_K. Block layouts as in
// compute/cpu/blocks.h (little-endian, as GGUF stores them).
//
//   float v = dequant(row * pc.row_bytes, k);   // element k of that row
//
// Every F16 field and every block start is at an even byte offset, so a
// 16-bit read never straddles two words.

uint w_u8(uint byte_offset) {
  return (w_data[byte_offset >> 2] >> ((byte_offset & 3u) * 8u)) & 0xffu;
}

uint w_u16(uint byte_offset) {
  return (w_data[byte_offset >> 2] >> ((byte_offset & 2u) * 8u)) & 0xffffu;
}

float w_f16(uint byte_offset) {
  return unpackHalf2x16(w_u16(byte_offset)).x;
}

int w_i8(uint byte_offset) {
  return bitfieldExtract(int(w_u8(byte_offset)), 0, 8);  // sign-extends bit 7
}

// The 4 bytes at any byte offset (two loads when unaligned).
uint w_word(uint byte_offset) {
  const uint shift = (byte_offset & 3u) * 8u;
  const uint lo = w_data[byte_offset >> 2];
  if (shift == 0u) return lo;
  return (lo >> shift) | (w_data[(byte_offset >> 2) + 1u] << (32u - shift));
}

// --- where one block of 32 of a row keeps its fields (for dequant,
// dequant_block and codes.glsl's decode_codes) ---

#if defined(DATA_A_Q4_0) || defined(DATA_A_Q4_1)
// Block b of a Q4_0 or Q4_1 row: element j is d * q_j + m, with q_j the low
// (j < 16) or high nibble of byte j % 16 of the 16 bytes at qs.
void q4_block(uint row, uint b, out float d, out float m, out uint qs) {
#if defined(DATA_A_Q4_0)
  const uint base = row + 18u * b;
  d = w_f16(base);
  m = -8.0 * d;
  qs = base + 2u;
#else
  const uint base = row + 20u * b;
  const vec2 dm = unpackHalf2x16(w_word(base));
  d = dm.x;
  m = dm.y;
  qs = base + 4u;
#endif
}
#elif defined(DATA_A_Q4_K)
// Block b of a Q4_K row (sub-block b % 8 of super-block b / 8): element i is
// scale * q_i - offset, with q_i the nibble at `shift` of byte i of the 32
// bytes at qs. The 6-bit scales and mins of the 8 sub-blocks are packed in
// the 12 bytes after the F16 d and dmin.
void q4k_block(uint row, uint b, out float scale, out float offset, out uint qs,
               out uint shift) {
  const uint base = row + (b >> 3) * 144u;
  const uint sub = b & 7u;
  const vec2 dm = unpackHalf2x16(w_word(base));
  const uint s = base + 4u;
  uint sc, m;
  if (sub < 4u) {
    sc = w_u8(s + sub) & 63u;
    m = w_u8(s + sub + 4u) & 63u;
  } else {
    sc = (w_u8(s + sub + 4u) & 15u) | ((w_u8(s + sub - 4u) >> 6) << 4);
    m = (w_u8(s + sub + 4u) >> 4) | ((w_u8(s + sub) >> 6) << 4);
  }
  scale = dm.x * float(sc);
  offset = dm.y * float(m);
  // Chunk sub / 2 of 32 bytes: low nibbles are sub-block 2c, high 2c + 1.
  qs = base + 16u + 32u * (sub >> 1);
  shift = 4u * (sub & 1u);
}
#endif

#if defined(DATA_A_F32)
float dequant(uint row, uint k) {
  return uintBitsToFloat(w_data[(row >> 2) + k]);
}
#elif defined(DATA_A_F16)
float dequant(uint row, uint k) {
  return w_f16(row + 2u * k);
}
#elif defined(DATA_A_BF16)
float dequant(uint row, uint k) {
  return uintBitsToFloat(w_u16(row + 2u * k) << 16);
}
#elif defined(DATA_A_Q8_0)
// 34-byte blocks of 32: F16 d, 32 x int8.
float dequant(uint row, uint k) {
  const uint base = row + (k >> 5) * 34u;
  return w_f16(base) * float(w_i8(base + 2u + (k & 31u)));
}
#elif defined(DATA_A_Q4_0)
// 18-byte blocks of 32: F16 d, 16 bytes; byte j: element j (low), j + 16 (high).
float dequant(uint row, uint k) {
  const uint base = row + (k >> 5) * 18u;
  const uint j = k & 31u;
  const uint q = (w_u8(base + 2u + (j & 15u)) >> (j < 16u ? 0u : 4u)) & 15u;
  return w_f16(base) * (float(q) - 8.0);
}
#elif defined(DATA_A_Q4_1)
// 20-byte blocks of 32: F16 d, F16 m, 16 bytes as Q4_0.
float dequant(uint row, uint k) {
  const uint base = row + (k >> 5) * 20u;
  const uint j = k & 31u;
  const uint q = (w_u8(base + 4u + (j & 15u)) >> (j < 16u ? 0u : 4u)) & 15u;
  return w_f16(base) * float(q) + w_f16(base + 2u);
}
#elif defined(DATA_A_Q4_K)
// 144-byte super-blocks of 256: F16 d, F16 dmin, 12 bytes of 6-bit scales and
// mins, 128 bytes of nibbles in 4 chunks of 64 (low nibbles: sub-block 2c,
// high: 2c + 1); see q4k_block.
float dequant(uint row, uint k) {
  float scale, offset;
  uint qs, shift;
  q4k_block(row, k >> 5, scale, offset, qs, shift);
  const uint q = (w_u8(qs + (k & 31u)) >> shift) & 15u;
  return scale * float(q) - offset;
}
#elif defined(DATA_A_Q6_K)
// 210-byte super-blocks of 256: 128 bytes ql, 64 bytes qh, 16 int8 scales,
// F16 d. Two halves of 128; quarter r of a half takes ql[l + 32 (r & 1)]
// (low nibble for r < 2), qh[l] bits 2r, 2r+1, scale l / 16 + 2r.
float dequant(uint row, uint k) {
  const uint base = row + (k >> 8) * 210u;
  const uint j = k & 255u;
  const uint h = j >> 7, r = (j >> 5) & 3u, l = j & 31u;
  const uint lo = (w_u8(base + 64u * h + l + 32u * (r & 1u)) >> (r < 2u ? 0u : 4u)) & 15u;
  const uint hi = (w_u8(base + 128u + 32u * h + l) >> (2u * r)) & 3u;
  const int q = int(lo | (hi << 4)) - 32;
  const int sc = w_i8(base + 192u + 8u * h + l / 16u + 2u * r);
  return w_f16(base + 208u) * float(sc) * float(q);
}
#else
#error "dequant.glsl: define one DATA_A_* type"
#endif

// --- whole blocks of 32, for the matrix kernels ---
//
// dequant_block(row, b, v) writes elements 32b .. 32b + 31 of the row into v
// with as few loads as the layout allows (a word holds 4 bytes: 8 nibbles or
// 4 int8): on lavapipe every load costs a loop over the SIMD lanes, so this
// is what makes the matrix kernels fast there. Precondition: the row holds
// at least 32b + 32 elements.

// 32 nibbles: the low (shift 0) or high (shift 4) halves of 32 bytes at o,
// element i from byte i.
void nibbles32(uint o, uint shift, inout float v[32]) {
  for (uint w = 0; w < 8u; ++w) {
    const uint word = w_word(o + 4u * w) >> shift;
    for (uint j = 0; j < 4u; ++j) v[4u * w + j] = float((word >> (8u * j)) & 15u);
  }
}

#if defined(DATA_A_F32)
void dequant_block(uint row, uint b, inout float v[32]) {
  const uint base = (row >> 2) + 32u * b;
  for (uint i = 0; i < 32u; ++i) v[i] = uintBitsToFloat(w_data[base + i]);
}
#elif defined(DATA_A_F16) || defined(DATA_A_BF16)
void dequant_block(uint row, uint b, inout float v[32]) {
  const uint base = row + 64u * b;
  for (uint i = 0; i < 16u; ++i) {
    const uint word = w_word(base + 4u * i);
#if defined(DATA_A_F16)
    const vec2 pair = unpackHalf2x16(word);
    v[2u * i] = pair.x;
    v[2u * i + 1u] = pair.y;
#else
    v[2u * i] = uintBitsToFloat(word << 16);
    v[2u * i + 1u] = uintBitsToFloat(word & 0xffff0000u);
#endif
  }
}
#elif defined(DATA_A_Q8_0)
void dequant_block(uint row, uint b, inout float v[32]) {
  const uint base = row + 34u * b;
  const float d = w_f16(base);
  for (uint w = 0; w < 8u; ++w) {
    const int word = int(w_word(base + 2u + 4u * w));
    for (uint j = 0; j < 4u; ++j) v[4u * w + j] = d * float(bitfieldExtract(word, int(8u * j), 8));
  }
}
#elif defined(DATA_A_Q4_0) || defined(DATA_A_Q4_1)
void dequant_block(uint row, uint b, inout float v[32]) {
  float d, m;
  uint qs;
  q4_block(row, b, d, m, qs);
  // Byte j: element j (low nibble) and j + 16 (high nibble).
  for (uint w = 0; w < 4u; ++w) {
    const uint word = w_word(qs + 4u * w);
    for (uint j = 0; j < 4u; ++j) {
      const uint byte = (word >> (8u * j)) & 0xffu;
      v[4u * w + j] = d * float(byte & 15u) + m;
      v[16u + 4u * w + j] = d * float(byte >> 4) + m;
    }
  }
}
#elif defined(DATA_A_Q4_K)
void dequant_block(uint row, uint b, inout float v[32]) {
  float scale, offset;
  uint qs, shift;
  q4k_block(row, b, scale, offset, qs, shift);
  nibbles32(qs, shift, v);
  for (uint i = 0; i < 32u; ++i) v[i] = scale * v[i] - offset;
}
#elif defined(DATA_A_Q6_K)
void dequant_block(uint row, uint b, inout float v[32]) {
  const uint base = row + (b >> 3) * 210u;
  const uint sub = b & 7u;
  const uint h = sub >> 2, r = sub & 3u;
  const float d = w_f16(base + 208u);
  const float sc0 = d * float(w_i8(base + 192u + 8u * h + 2u * r));
  const float sc1 = d * float(w_i8(base + 192u + 8u * h + 2u * r + 1u));
  const uint ql = base + 64u * h + 32u * (r & 1u), qh = base + 128u + 32u * h;
  for (uint w = 0; w < 8u; ++w) {
    const uint lo = w_word(ql + 4u * w) >> (r < 2u ? 0u : 4u);
    const uint hi = w_word(qh + 4u * w) >> (2u * r);
    for (uint j = 0; j < 4u; ++j) {
      const int q = int(((lo >> (8u * j)) & 15u) | (((hi >> (8u * j)) & 3u) << 4)) - 32;
      v[4u * w + j] = (w < 4u ? sc0 : sc1) * float(q);
    }
  }
}
#endif
