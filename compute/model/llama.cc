#include "compute/model/llama.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "compute/cpu/attention.h"
#include "compute/cpu/dequantize.h"
#include "compute/cpu/matmul.h"
#include "compute/cpu/ops.h"
#include "compute/model/block_ops.h"

namespace triage::model {

void llama_forward(const config& c, const weights& w, const ragged_batch& b, int n_blocks,
                   const block_options& opts, run_state& st, cpu::thread_pool& pool,
                   kv_cache* cache) {
  const int64_t n = b.n_tokens();
  if (n == 0) return;
  if (cache != nullptr && b.n_seqs() != 1) {
    throw std::invalid_argument("llama_forward: a KV cache serves exactly one sequence");
  }
  const int dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), hd = c.head_dim;
  const int group = c.n_heads / c.n_kv_heads;
  const int64_t n_past = cache != nullptr ? cache->size() : 0;
  if (cache != nullptr && n_past + n > cache->capacity()) {
    throw std::length_error("llama_forward: the KV cache is full");
  }
  st.reserve(c, n);

  pool.parallel_for(n, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      cpu::dequantize_row(w.token_embd.type, w.token_embd.row(b.tokens[i]), st.x.data() + i * dim,
                          dim);
    }
  });
  if (st.rope.n_rot() != c.rope_dim) {
    st.rope = cpu::rope_table(c.rope_dim, c.rope_freq_base, c.rope_freq_scale, w.rope_freqs);
  }
  st.rope.prepare(b.positions);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  for (int layer = 0; layer < n_blocks; ++layer) {
    const layer_weights& l = w.layers[static_cast<size_t>(layer)];

    // --- attention ---
    rmsnorm_rows(st.x.data(), l.attn_norm, st.xb.data(), n, dim, c.rms_eps, pool);
    const auto in = prepare_input(st.xb.data(), n, dim, st, pool, {&l.wq, &l.wk, &l.wv});
    cpu::matmul(l.wq, in, st.q.data(), pool);
    cpu::matmul(l.wk, in, st.k.data(), pool);
    cpu::matmul(l.wv, in, st.v.data(), pool);
    pool.parallel_for(n, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        float* q = st.q.data() + i * q_dim;
        float* k = st.k.data() + i * kv_dim;
        if (c.qkv_bias) {
          cpu::add(q, l.bq.data(), q_dim);
          cpu::add(k, l.bk.data(), kv_dim);
          cpu::add(st.v.data() + i * kv_dim, l.bv.data(), kv_dim);
        }
        if (c.rope_neox) {
          for (int h = 0; h < c.n_heads; ++h) st.rope.apply_neox(q + h * hd, i);
          for (int h = 0; h < c.n_kv_heads; ++h) st.rope.apply_neox(k + h * hd, i);
        } else {
          for (int h = 0; h < c.n_heads; ++h) st.rope.apply_normal(q + h * hd, i);
          for (int h = 0; h < c.n_kv_heads; ++h) st.rope.apply_normal(k + h * hd, i);
        }
        if (opts.f16_attention) {
          cpu::round_to_f16(q, q_dim);
          cpu::round_to_f16(k, kv_dim);
          cpu::round_to_f16(st.v.data() + i * kv_dim, kv_dim);
        }
      }
    });
    const float* keys = st.k.data();
    const float* values = st.v.data();
    if (cache != nullptr) {
      std::memcpy(cache->k(layer, n_past), st.k.data(), sizeof(float) * n * kv_dim);
      std::memcpy(cache->v(layer, n_past), st.v.data(), sizeof(float) * n * kv_dim);
      keys = cache->k(layer, 0);
      values = cache->v(layer, 0);
    }
    // One task per (sequence, head): sequences differ in length, so tasks are
    // handed out dynamically.
    pool.parallel_for(b.n_seqs() * c.n_heads, 1, [&](int64_t t0, int64_t t1) {
      thread_local std::vector<float> scratch;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t s = t / c.n_heads;
        const int h = static_cast<int>(t % c.n_heads);
        const int64_t first = b.offsets[s];
        const int64_t kv_first = cache != nullptr ? 0 : first;
        const int64_t q_pos0 = cache != nullptr ? n_past : 0;
        cpu::attention_args a;
        a.q = st.q.data() + first * q_dim + h * hd;
        a.ldq = q_dim;
        a.n_q = b.length(s);
        a.q_pos0 = q_pos0;
        a.k = keys + kv_first * kv_dim + (h / group) * hd;
        a.v = values + kv_first * kv_dim + (h / group) * hd;
        a.ldkv = kv_dim;
        a.head_dim = hd;
        a.scale = scale;
        a.out = st.att.data() + first * q_dim + h * hd;
        a.ldo = q_dim;
        a.f16_weights = opts.f16_attention;
        const size_t need = cpu::attention_scratch_floats(q_pos0 + a.n_q, hd);
        if (scratch.size() < need) scratch.resize(need);
        cpu::attention_head(a, scratch);
      }
    });
    const auto att_in = prepare_input(st.att.data(), n, q_dim, st, pool, {&l.wo});
    cpu::matmul(l.wo, att_in, st.xb.data(), pool);
    pool.parallel_for(n, 64, [&](int64_t r0, int64_t r1) {
      cpu::add(st.x.data() + r0 * dim, st.xb.data() + r0 * dim, (r1 - r0) * dim);
    });

    // --- feed-forward ---
    rmsnorm_rows(st.x.data(), l.ffn_norm, st.xb.data(), n, dim, c.rms_eps, pool);
    const auto ffn_in = prepare_input(st.xb.data(), n, dim, st, pool, {&l.w_gate, &l.w_up});
    cpu::matmul(l.w_gate, ffn_in, st.gate.data(), pool);
    cpu::matmul(l.w_up, ffn_in, st.up.data(), pool);
    pool.parallel_for(n, 16, [&](int64_t r0, int64_t r1) {
      const int64_t f = c.ffn_dim;
      cpu::swiglu(st.gate.data() + r0 * f, st.up.data() + r0 * f, st.gate.data() + r0 * f,
                  (r1 - r0) * f);
    });
    const auto down_in = prepare_input(st.gate.data(), n, c.ffn_dim, st, pool, {&l.w_down});
    cpu::matmul(l.w_down, down_in, st.xb.data(), pool);
    pool.parallel_for(n, 64, [&](int64_t r0, int64_t r1) {
      cpu::add(st.x.data() + r0 * dim, st.xb.data() + r0 * dim, (r1 - r0) * dim);
    });
  }
  if (cache != nullptr) cache->set_size(n_past + n);
}

}  // namespace triage::model
