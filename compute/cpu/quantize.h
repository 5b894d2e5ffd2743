// quantize.h: float -> quantized encodings. Two uses:
//  - activations: `q8_activations` holds rows of x quantized to int8, which
//    the integer matmul kernels consume, in the format llama.cpp's CPU
//    backend pairs with the weight type (its vec_dot_type), so the engine
//    rounds the activations as llama.cpp does:
//      q8_format::q8_0 for Q4_0, Q4_1, Q5_0, Q8_0: one scale per 32 values,
//        d = max|x| / 127 rounded to F16 (ggml's Q8_0 / Q8_1);
//      q8_format::q8_k for Q6_K: one float scale per 256 values,
//        d = 1 / (-127 / v) with v the value of largest magnitude, codes
//        min(127, round(x * -127 / v)) (ggml's Q8_K).
//    Q4_K is the exception: ggml pairs it with Q8_K too, but against
//    llama-cpp-python 0.3.36 on Gemma 3 270M (compute/tests/model_gemma3_test)
//    Q8_K for Q4_K made 2 of the 6 golden prompts worse (cosine 0.9986 ->
//    0.9963) while Q8_K for Q6_K helped every long prompt, so Q4_K keeps the
//    finer per-32 rounding until that path of llama.cpp (its repacked /
//    tiled Q4_K kernels) is reproduced. Both formats are stored per 32-block
//    (the 8 blocks of a Q8_K super-block share their scale), so every kernel
//    reads either, and a caller may pass either (matmul_input::xq).
//  - weights: simple round-to-nearest encoders for every type the engine
//    reads, to build tiny test models and to test the kernels. They produce
//    valid files but are not tuned like llama.cpp's quantizers.
//
//   triage::cpu::q8_activations xq;
//   triage::cpu::quantize_activations(x, m, k, xq);         // x: (m, k) floats
//   triage::cpu::quantize_activations(x, m, k, xq, nullptr, 0,
//                                     triage::cpu::activation_format(w.type));
//   auto bytes = triage::cpu::quantize_weights(tensor_type::q4_1, w, rows, cols);
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "compute/gguf/types.h"

namespace triage::cpu {

class thread_pool;

// How activations are rounded to int8 (see the top of the file).
enum class q8_format {
  q8_0,  // per 32 values, F16 scale max|x| / 127 (ggml Q8_0 / Q8_1)
  q8_k,  // per 256 values, float scale of the signed maximum / -127 (ggml Q8_K)
};
// The format the engine quantizes activations to for weights of type t
// (llama.cpp's choice, Q4_K excepted, see above): q8_k for Q6_K, q8_0 otherwise.
q8_format activation_format(gguf::tensor_type t);

// Rows of activations quantized for the integer kernels. k is a multiple of
// 32 (of 256 for q8_k); block b of row i covers x[i][32b .. 32b + 31] ~=
// d[i][b] * q[i][32b ..].
// The kernels work on groups of 4 rows, so q is padded with zero rows to a
// multiple of 4 and the scales are also kept group-transposed. Buffers only
// grow, so reusing one object across calls does not allocate.
struct q8_activations {
  static constexpr int group = 4;
  int64_t m = 0;   // rows
  int64_t k = 0;   // row length, a multiple of 32
  int64_t nb = 0;  // blocks per row, k / 32
  q8_format format = q8_format::q8_0;
  std::vector<int8_t> q;  // (m rounded up to 4, k); padding rows are 0
  std::vector<float> d;   // (m, nb) scale of each block
  std::vector<float> s;   // (m, nb) d * sum of the block's q (F16-rounded for q8_0, as Q8_1):
                          // the offset terms of Q4_0/Q4_1/Q4_K
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
// k % 32 == 0 (k % 256 == 0 for q8_k; std::invalid_argument otherwise). Runs
// on the pool when given; picks AVX2 when the CPU has it (q8_0).
void quantize_activations(const float* x, int64_t m, int64_t k, q8_activations& out,
                          thread_pool* pool = nullptr, int64_t ldx = 0,
                          q8_format format = q8_format::q8_0);
// The scalar reference, bit-identical in q and d to the vector version.
void quantize_activations_reference(const float* x, int64_t m, int64_t k, q8_activations& out,
                                    int64_t ldx = 0, q8_format format = q8_format::q8_0);

// Whether quantize_weights supports the type (F32, F16, BF16, Q8_0, Q4_0,
// Q4_1, Q5_0, Q4_K, Q6_K).
bool can_quantize(gguf::tensor_type t);
// Encodes a row-major (rows, cols) float matrix as type t: rows * row_bytes.
// cols must be a whole number of the type's blocks (32, or 256 for K-quants).
std::vector<std::byte> quantize_weights(gguf::tensor_type t, std::span<const float> x,
                                        int64_t rows, int64_t cols);

}  // namespace triage::cpu
