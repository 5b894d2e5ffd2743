// matmul.h: y = x W^T for a weight matrix W in any type the engine reads, x
// float activations: y[i][j] = sum_l x[i][l] * W[j][l]. W stays where it is
// (usually the model's mmap); nothing is dequantized.
//
// Quantized W (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K): x is first quantized to int8
// (q8_activations: per 32 values for the 32-blocks, Q8_K per 256 values for the
// K-quants, as llama.cpp does), then each (row, column) pair is an integer dot
// product per 32-block, scaled in float. Float W (F32,
// F16, BF16): float dot products. Kernels: scalar, AVX2 (maddubs/madd) and
// AVX-512 VNNI (vpdpbusd), chosen at run time (cpu_features.h); each kernel
// computes a tile of R weight rows x C activation rows so that every weight
// block is decoded once per C rows. Threads split the weight rows.
//
//   triage::cpu::thread_pool pool;
//   triage::cpu::matrix_view w = triage::cpu::matrix_view::of(tensor);  // from the GGUF reader
//   triage::cpu::matmul(w, x, m, y, pool);             // x (m, w.cols), y (m, w.rows)
//   // Several matrices over the same input (Q, K, V): quantize once.
//   triage::cpu::q8_activations xq;
//   triage::cpu::quantize_activations(x, m, w.cols, xq, &pool, 0,
//                                     triage::cpu::activation_format(wq.type));
//   triage::cpu::matmul(wq, {x, &xq, m}, q, pool);
#pragma once

#include <cstddef>
#include <cstdint>

#include "compute/cpu/cpu_features.h"
#include "compute/cpu/quantize.h"
#include "compute/gguf/reader.h"
#include "compute/gguf/types.h"

namespace triage::cpu {

class thread_pool;

// A row-major weight matrix of `rows` rows (outputs) of `cols` elements
// (inputs) in ggml type `type`, rows `row_bytes` apart.
struct matrix_view {
  gguf::tensor_type type = gguf::tensor_type::f32;
  int64_t rows = 0;  // n, the output features (ne1)
  int64_t cols = 0;  // k, the row length (ne0)
  size_t row_bytes = 0;
  const std::byte* data = nullptr;

  const std::byte* row(int64_t i) const { return data + static_cast<size_t>(i) * row_bytes; }
  // A 2-D GGUF tensor (ne0 = cols, ne1 = rows).
  static matrix_view of(const gguf::tensor_info& t);
};

// Whether matmul reads this type (the same set as dequantize).
bool can_matmul(gguf::tensor_type t);
// Whether the kernels for this type consume quantized activations.
bool uses_q8(gguf::tensor_type t);

// The input of a matmul: m rows of k floats, row stride ldx (0 means k), and
// optionally the same rows already quantized (reused across matrices that
// share the input; computed on the fly when null and W needs it, in
// activation_format(W.type); a given xq is used in whatever format it has).
struct matmul_input {
  const float* x = nullptr;
  const q8_activations* xq = nullptr;
  int64_t m = 0;
  int64_t ldx = 0;
};

// y (m, w.rows) with row stride ldy (0 means w.rows). Uses the best kernel
// family allowed (active_isa()).
void matmul(const matrix_view& w, const matmul_input& in, float* y, thread_pool& pool,
            int64_t ldy = 0);
inline void matmul(const matrix_view& w, const float* x, int64_t m, float* y, thread_pool& pool,
                   int64_t ldy = 0) {
  matmul(w, matmul_input{x, nullptr, m, 0}, y, pool, ldy);
}
// The same with an explicit kernel family (tests and benchmarks; capped at
// what the CPU supports).
void matmul_with(isa family, const matrix_view& w, const matmul_input& in, float* y,
                 thread_pool& pool, int64_t ldy = 0);

// The reference: W dequantized row by row, float x, dot products in double.
// Slow; for tests only.
void matmul_reference(const matrix_view& w, const float* x, int64_t m, float* y);

}  // namespace triage::cpu
