#include "compute/cpu/matmul.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "compute/cpu/dequantize.h"
#include "compute/cpu/matmul_kernels.h"
#include "compute/cpu/thread_pool.h"

namespace triage::cpu {

using gguf::tensor_type;

matrix_view matrix_view::of(const gguf::tensor_info& t) {
  matrix_view v;
  v.type = t.type;
  v.cols = static_cast<int64_t>(t.ne[0]);
  v.rows = static_cast<int64_t>(t.n_elements / t.ne[0]);
  v.row_bytes = static_cast<size_t>(t.row_bytes());
  v.data = t.data.data();
  return v;
}

bool can_matmul(tensor_type t) { return can_dequantize(t); }

bool uses_q8(tensor_type t) {
  switch (t) {
    case tensor_type::q4_0:
    case tensor_type::q4_1:
    case tensor_type::q5_0:
    case tensor_type::q8_0:
    case tensor_type::q4_k:
    case tensor_type::q6_k:
      return true;
    default:
      return false;
  }
}

void matmul_with(isa family, const matrix_view& w, const matmul_input& in, float* y,
                 thread_pool& pool, int64_t ldy) {
  if (!can_matmul(w.type)) {
    throw std::invalid_argument("matmul: unsupported weight type " +
                                std::string(gguf::type_name(w.type)));
  }
  if (in.m <= 0 || w.rows <= 0) return;
  family = std::min(family, active_isa());

  detail::matmul_job job;
  job.w = w;
  job.x = in.x;
  job.ldx = in.ldx != 0 ? in.ldx : w.cols;
  job.m = in.m;
  job.y = y;
  job.ldy = ldy != 0 ? ldy : w.rows;

  q8_activations local;
  if (uses_q8(w.type)) {
    if (in.xq != nullptr) {
      if (in.xq->k != w.cols || in.xq->m < in.m) {
        throw std::invalid_argument("matmul: quantized input has the wrong shape");
      }
      job.xq = in.xq;
    } else {
      quantize_activations(in.x, in.m, w.cols, local, &pool, job.ldx, activation_format(w.type));
      job.xq = &local;
    }
  }

  auto* kernel = &detail::matmul_rows_scalar;
  if (family == isa::avx512_vnni) {
    kernel = &detail::matmul_rows_avx512;
  } else if (family == isa::avx2) {
    kernel = &detail::matmul_rows_avx2;
  }
  // Chunks of weight rows: several per thread for balance, each a multiple
  // of the tile height, larger when there are few inputs (less overhead).
  const int64_t per_thread = (w.rows + pool.size() - 1) / pool.size();
  int64_t grain = job.m >= 16 ? 32 : 64;
  grain = std::max<int64_t>(8, std::min(grain, (per_thread + 7) / 8 * 8));
  pool.parallel_for(w.rows, grain, [&](int64_t n0, int64_t n1) { kernel(job, n0, n1); });
}

void matmul(const matrix_view& w, const matmul_input& in, float* y, thread_pool& pool,
            int64_t ldy) {
  matmul_with(active_isa(), w, in, y, pool, ldy);
}

void matmul_reference(const matrix_view& w, const float* x, int64_t m, float* y) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.type, w.row(r), row.data(), w.cols);
    for (int64_t c = 0; c < m; ++c) {
      double acc = 0.0;
      for (int64_t l = 0; l < w.cols; ++l) {
        acc += static_cast<double>(row[static_cast<size_t>(l)]) * x[c * w.cols + l];
      }
      y[c * w.rows + r] = static_cast<float>(acc);
    }
  }
}

}  // namespace triage::cpu
