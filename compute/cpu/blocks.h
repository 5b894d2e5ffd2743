// blocks.h: the on-disk block layouts of the ggml quantized tensor types the
// CPU kernels read (GGUF stores them as ggml writes them, little-endian).
// A row of a quantized tensor is a whole number of blocks; each block holds
// `block_size` elements with its own scale(s).
//
//   const auto* b = reinterpret_cast<const triage::cpu::block_q4_1*>(row);
//   float x0 = fp16_to_fp32(b[0].d) * (b[0].qs[0] & 0xf) + fp16_to_fp32(b[0].m);
//
// Element order within the 32-element blocks (Q4_0, Q4_1): byte j holds
// element j in its low nibble and element j + 16 in its high nibble.
#pragma once

#include <cstddef>
#include <cstdint>

namespace triage::cpu {

inline constexpr int qk32 = 32;   // elements per block of Q4_0, Q4_1, Q5_0, Q8_0
inline constexpr int qk_k = 256;  // elements per super-block of the K-quants

// x = d * (q - 8), q in 0..15.
struct block_q4_0 {
  uint16_t d;  // F16 scale
  uint8_t qs[qk32 / 2];
};
static_assert(sizeof(block_q4_0) == 18);

// x = d * q + m, q in 0..15.
struct block_q4_1 {
  uint16_t d;  // F16 scale
  uint16_t m;  // F16 offset (the block minimum)
  uint8_t qs[qk32 / 2];
};
static_assert(sizeof(block_q4_1) == 20);

// x = d * (q - 16), q in 0..31: the low 4 bits as in Q4_0 (byte j: element
// j low nibble, element j + 16 high nibble), bit 4 of element j in bit j of
// qh (little-endian 32-bit).
struct block_q5_0 {
  uint16_t d;  // F16 scale
  uint8_t qh[4];
  uint8_t qs[qk32 / 2];
};
static_assert(sizeof(block_q5_0) == 22);

// x = d * q, q in -127..127 (ggml never writes -128).
struct block_q8_0 {
  uint16_t d;  // F16 scale
  int8_t qs[qk32];
};
static_assert(sizeof(block_q8_0) == 34);

// 8 sub-blocks of 32; sub-block j: x = d * sc_j * q - dmin * m_j, q in 0..15,
// sc_j and m_j 6-bit, packed in `scales` (see q4_k_scale_min). The 256 values
// come in 4 chunks of 64: chunk c uses qs[32c .. 32c + 31], its low nibbles
// are sub-block 2c and its high nibbles sub-block 2c + 1.
struct block_q4_k {
  uint16_t d;     // F16 super-block scale of the sub-block scales
  uint16_t dmin;  // F16 super-block scale of the sub-block mins
  uint8_t scales[12];
  uint8_t qs[qk_k / 2];
};
static_assert(sizeof(block_q4_k) == 144);

// Sub-block j (0..7) of a Q4_K block: its 6-bit scale and min.
inline void q4_k_scale_min(int j, const uint8_t* s, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// 16 sub-blocks of 16; x = d * scales[j] * (q - 32), q 6-bit: low 4 bits in
// ql, high 2 bits in qh. Two halves of 128 elements; in half h (ql + 64h,
// qh + 32h, scales + 8h), for l in 0..31:
//   element l      : ql[l] & 0xf,      (qh[l] >> 0) & 3, scale (l / 16) + 0
//   element l + 32 : ql[l + 32] & 0xf, (qh[l] >> 2) & 3, scale (l / 16) + 2
//   element l + 64 : ql[l] >> 4,       (qh[l] >> 4) & 3, scale (l / 16) + 4
//   element l + 96 : ql[l + 32] >> 4,  (qh[l] >> 6) & 3, scale (l / 16) + 6
struct block_q6_k {
  uint8_t ql[qk_k / 2];
  uint8_t qh[qk_k / 4];
  int8_t scales[qk_k / 16];
  uint16_t d;  // F16 super-block scale
};
static_assert(sizeof(block_q6_k) == 210);

}  // namespace triage::cpu
