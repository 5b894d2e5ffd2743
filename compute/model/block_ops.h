// block_ops.h: steps every architecture's blocks share (llama.cc runs llama
// and qwen2, gemma3.cc runs gemma3): row-wise RMSNorm over a batch, and
// preparing a matmul input (quantizing it once when a weight type reads 8-bit
// activations).
//
//   rmsnorm_rows(st.x.data(), l.attn_norm, st.xb.data(), n, dim, eps, pool);
//   const auto in = prepare_input(st.xb.data(), n, dim, st, pool, {&l.wq, &l.wk, &l.wv});
//   cpu::matmul(l.wq, in, st.q.data(), pool);
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>

#include "compute/cpu/matmul.h"
#include "compute/cpu/ops.h"
#include "compute/cpu/quantize.h"
#include "compute/cpu/thread_pool.h"
#include "compute/model/run_state.h"

namespace triage::model {

// Quantizes the input once when the matrices reading it need it, in the
// format their type pairs with (cpu::activation_format). Matrices that would
// need different formats get none: each matmul then quantizes for itself.
inline cpu::matmul_input prepare_input(const float* x, int64_t n, int64_t k, run_state& st,
                                       cpu::thread_pool& pool,
                                       std::initializer_list<const cpu::matrix_view*> ws) {
  bool q8 = false, mixed = false;
  cpu::q8_format format = cpu::q8_format::q8_0;
  for (const auto* w : ws) {
    if (!cpu::uses_q8(w->type)) continue;
    const cpu::q8_format f = cpu::activation_format(w->type);
    mixed = mixed || (q8 && f != format);
    format = f;
    q8 = true;
  }
  if (mixed) return cpu::matmul_input{x, nullptr, n, 0};
  if (q8) cpu::quantize_activations(x, n, k, st.xq, &pool, 0, format);
  return cpu::matmul_input{x, q8 ? &st.xq : nullptr, n, 0};
}

// y = rmsnorm(x) * weight for each of n rows of dim values.
inline void rmsnorm_rows(const float* x, std::span<const float> weight, float* y, int64_t n, int dim,
                         float eps, cpu::thread_pool& pool) {
  pool.parallel_for(n, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) cpu::rmsnorm(x + i * dim, weight.data(), y + i * dim, dim, eps);
  });
}

}  // namespace triage::model
