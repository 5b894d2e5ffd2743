// matmul_kernels.h: the per-family kernel entry points behind matmul.h
// (internal to compute/cpu). Each computes the outputs of weight rows
// [n0, n1) for all m input rows; matmul() splits the rows over threads.
#pragma once

#include <cstdint>

#include "compute/cpu/matmul.h"
#include "compute/cpu/quantize.h"

namespace triage::cpu::detail {

struct matmul_job {
  matrix_view w;
  const float* x = nullptr;  // (m, w.cols), row stride ldx: float kernels
  int64_t ldx = 0;
  const q8_activations* xq = nullptr;  // the same rows quantized: q8 kernels
  int64_t m = 0;
  float* y = nullptr;  // (m, w.rows), row stride ldy
  int64_t ldy = 0;
};

void matmul_rows_scalar(const matmul_job& job, int64_t n0, int64_t n1);
void matmul_rows_avx2(const matmul_job& job, int64_t n0, int64_t n1);
void matmul_rows_avx512(const matmul_job& job, int64_t n0, int64_t n1);

// Quantizes rows [row0, row1) of x into out (already sized).
void quantize_rows_avx2(const float* x, int64_t ldx, int64_t row0, int64_t row1,
                        q8_activations& out);

}  // namespace triage::cpu::detail
