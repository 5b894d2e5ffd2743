// quantize.h: float -> quantized encodings. Two uses:
//  - activations: `q8_activations` holds rows of x quantized to int8 with
//    one scale per 32 values (as ggml's Q8_0/Q8_1: d = max|x| / 127, rounded
//    to F16 precision), which the integer matmul kernels consume. The same
//    format serves every weight type, K-quants included (finer than ggml's
//    per-256 Q8_K, so a little more accurate).
//  - weights: simple round-to-nearest encoders for every type the engine
//    reads, to build tiny test models and to test the kernels. They produce
//    valid files but are not tuned like llama.cpp's quantizers.
//
//   triage::cpu::q8_activations xq;
//   triage::cpu::quantize_activations(x, m, k, xq);         // x: (m, k) floats
//   auto bytes = triage::cpu::quantize_weights(tensor_type::q4_1, w, rows, cols);
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "compute/gguf/types.h"

namespace triage::cpu {

class thread_pool;

// Rows of activations quantized for the integer kernels. k is a multiple of
// 32; block b of row i covers x[i][32b .. 32b + 31] ~= d[i][b] * q[i][32b ..].
// The kernels work on groups of 4 rows, so q is padded with zero rows to a
// multiple of 4 and the scales are also kept group-transposed. Buffers only
// grow, so reusing one object across calls does not allocate.
struct q8_activations {
  static constexpr int group = 4;
  int64_t m = 0;   // rows
  int64_t k = 0;   // row length, a multiple of 32
  int64_t nb = 0;  // blocks per row, k / 32
  std::vector<int8_t> q;  // (m rounded up to 4, k); padding rows are 0
  std::vector<float> d;   // (m, nb) scale of each block
  std::vector<float> s;   // (m, nb) d * sum of the block's q: the offset terms of Q4_0/Q4_1/Q4_K
  std::vector<float> dt;  // (m / 4 rounded up, nb, 4): d of rows 4g .. 4g+3 side by side
  std::vector<float> st;  // (m / 4 rounded up, nb, 4): the same for s

  const int8_t* row_q(int64_t i) const { return q.data() + i * k; }
  const float* row_d(int64_t i) const { return d.data() + i * nb; }
  const float* row_s(int64_t i) const { return s.data() + i * nb; }
  // The 4 rows' scales of block b, for rows 4g .. 4g+3.
  const float* group_d(int64_t g) const { return dt.data() + g * nb * group; }
  const float* group_s(int64_t g) const { return st.data() + g * nb * group; }
};

// Quantizes x (m, k), row stride ldx (default k), into out. Precondition:
// k % 32 == 0. Runs on the pool when given; picks AVX2 when the CPU has it.
void quantize_activations(const float* x, int64_t m, int64_t k, q8_activations& out,
                          thread_pool* pool = nullptr, int64_t ldx = 0);
// The scalar reference, bit-identical in q and d to the vector version.
void quantize_activations_reference(const float* x, int64_t m, int64_t k, q8_activations& out,
                                    int64_t ldx = 0);

// Whether quantize_weights supports the type (F32, F16, BF16, Q8_0, Q4_0,
// Q4_1, Q5_0, Q4_K, Q6_K).
bool can_quantize(gguf::tensor_type t);
// Encodes a row-major (rows, cols) float matrix as type t: rows * row_bytes.
// cols must be a whole number of the type's blocks (32, or 256 for K-quants).
std::vector<std::byte> quantize_weights(gguf::tensor_type t, std::span<const float> x,
                                        int64_t rows, int64_t cols);

}  // namespace triage::cpu
