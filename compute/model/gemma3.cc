#include "compute/model/gemma3.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "compute/cpu/attention.h"
#include "compute/cpu/dequantize.h"
#include "compute/cpu/half.h"
#include "compute/cpu/matmul.h"
#include "compute/cpu/ops.h"
#include "compute/model/block_ops.h"

namespace triage::model {

namespace {

// x += norm(y) row by row (the post-norms before the residual adds).
void add_normed_rows(float* x, float* y, std::span<const float> weight, int64_t n, int dim,
                     float eps, cpu::thread_pool& pool) {
  pool.parallel_for(n, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      cpu::rmsnorm(y + i * dim, weight.data(), y + i * dim, dim, eps);
      cpu::add(x + i * dim, y + i * dim, dim);
    }
  });
}

// GELU as llama.cpp's CPU backend computes it (ggml's GGML_GELU_FP16
// table): the input rounded to F16, looked up in a table of
// F16(gelu(x)) for every F16 x; 0 below -10 and x above 10. Built once
// (64K entries, 256 KB). The tanh form is evaluated in float with
// 1 + 0.044715 x^2 as one fused multiply-add, the rounding of llama-cpp-python
// 0.3.36's build (its compiler contracts that expression): the table then
// equals the library's own ggml_table_gelu_f16 in all 65536 entries (read
// back through ctypes; without the FMA one entry differs, x = -1.99902).
const std::vector<float>& gelu_f16_table() {
  static const std::vector<float> table = [] {
    constexpr float sqrt_2_over_pi = 0.79788456080286535588f;
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) {
      const float x = cpu::fp16_to_fp32(static_cast<uint16_t>(h));
      const float inner = std::fma(0.044715f * x, x, 1.0f);
      t[h] = 0.5f * x * (1.0f + std::tanh(sqrt_2_over_pi * x * inner));
    }
    cpu::round_to_f16(t.data(), static_cast<int64_t>(t.size()));
    return t;
  }();
  return table;
}

// gate = gelu(gate) * up, with the table above.
void geglu_rows(float* gate, const float* up, int64_t n) {
  const std::vector<float>& table = gelu_f16_table();
  for (int64_t j = 0; j < n; ++j) {
    const float x = gate[j];
    float g;
    if (x <= -10.0f) {
      g = 0.0f;
    } else if (x >= 10.0f) {
      g = x;
    } else {
      g = table[cpu::fp32_to_fp16(x)];
    }
    gate[j] = g * up[j];
  }
}

}  // namespace

void gemma3_forward(const config& c, const weights& w, const ragged_batch& b, int n_blocks,
                    const block_options& opts, run_state& st, cpu::thread_pool& pool,
                    kv_cache* cache) {
  const int64_t n = b.n_tokens();
  if (n == 0) return;
  if (cache != nullptr && b.n_seqs() != 1) {
    throw std::invalid_argument("gemma3_forward: a KV cache serves exactly one sequence");
  }
  const int dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), hd = c.head_dim;
  const int group = c.n_heads / c.n_kv_heads;
  const int64_t n_past = cache != nullptr ? cache->size() : 0;
  if (cache != nullptr && n_past + n > cache->capacity()) {
    throw std::length_error("gemma3_forward: the KV cache is full");
  }
  st.reserve(c, n);

  const float emb_scale = c.embed_scale ? std::sqrt(static_cast<float>(dim)) : 1.0f;
  pool.parallel_for(n, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      float* x = st.x.data() + i * dim;
      cpu::dequantize_row(w.token_embd.type, w.token_embd.row(b.tokens[i]), x, dim);
      for (int d = 0; d < dim; ++d) x[d] *= emb_scale;
    }
  });
  if (st.rope.n_rot() != c.rope_dim) {
    // Scaling on the global layers only (llama.cpp: freq_scale_swa = 1).
    st.rope = cpu::rope_table(c.rope_dim, c.rope_freq_base, c.rope_freq_scale, w.rope_freqs);
    st.rope_local = cpu::rope_table(c.rope_dim, c.rope_freq_base_swa);
  }
  st.rope.prepare(b.positions);
  st.rope_local.prepare(b.positions);
  const float scale = c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));

  for (int layer = 0; layer < n_blocks; ++layer) {
    const layer_weights& l = w.layers[static_cast<size_t>(layer)];
    const bool local = c.is_local(layer);
    const cpu::rope_table& rope = local ? st.rope_local : st.rope;

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
        // The query scale is applied here, before the F16 rounding, as
        // llama.cpp scales Q before its attention (matters for F16 subnormals).
        for (int h = 0; h < c.n_heads; ++h) {
          cpu::rmsnorm(q + h * hd, l.attn_q_norm.data(), q + h * hd, hd, c.rms_eps);
          rope.apply_neox(q + h * hd, i);
          for (int d = 0; d < hd; ++d) q[h * hd + d] *= scale;
        }
        for (int h = 0; h < c.n_kv_heads; ++h) {
          cpu::rmsnorm(k + h * hd, l.attn_k_norm.data(), k + h * hd, hd, c.rms_eps);
          rope.apply_neox(k + h * hd, i);
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
    const int64_t window = local ? c.sliding_window : 0;
    pool.parallel_for(b.n_seqs() * c.n_heads, 1, [&](int64_t t0, int64_t t1) {
      thread_local std::vector<float> scratch;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t s = t / c.n_heads;
        const int h = static_cast<int>(t % c.n_heads);
        const int64_t first = b.offsets[s];
        const int64_t kv_first = cache != nullptr ? 0 : first;
        const int64_t q_pos0 = cache != nullptr ? n_past : 0;
        const int64_t len = b.length(s);
        cpu::attention_args a;
        a.ldq = q_dim;
        a.ldkv = kv_dim;
        a.head_dim = hd;
        a.scale = 1.0f;  // applied to Q above
        a.ldo = q_dim;
        a.f16_weights = opts.f16_attention;
        const float* k0 = keys + kv_first * kv_dim + (h / group) * hd;
        const float* v0 = values + kv_first * kv_dim + (h / group) * hd;
        auto run = [&](int64_t i0, int64_t n_q, int64_t pos0, int64_t key0) {
          a.q = st.q.data() + (first + i0) * q_dim + h * hd;
          a.n_q = n_q;
          a.q_pos0 = pos0;
          a.k = k0 + key0 * kv_dim;
          a.v = v0 + key0 * kv_dim;
          a.out = st.att.data() + (first + i0) * q_dim + h * hd;
          const size_t need = cpu::attention_scratch_floats(pos0 + n_q, hd);
          if (scratch.size() < need) scratch.resize(need);
          cpu::attention_head(a, scratch);
        };
        // Queries whose window reaches back to position 0 see the plain
        // causal mask; each later one sees its last `window` positions.
        const int64_t n_full = window > 0 ? std::clamp<int64_t>(window - q_pos0, 0, len) : len;
        if (n_full > 0) run(0, n_full, q_pos0, 0);
        for (int64_t i = n_full; i < len; ++i) run(i, 1, window - 1, q_pos0 + i - window + 1);
      }
    });
    const auto att_in = prepare_input(st.att.data(), n, q_dim, st, pool, {&l.wo});
    cpu::matmul(l.wo, att_in, st.xb.data(), pool);
    add_normed_rows(st.x.data(), st.xb.data(), l.post_attn_norm, n, dim, c.rms_eps, pool);

    // --- feed-forward (GeGLU) ---
    rmsnorm_rows(st.x.data(), l.ffn_norm, st.xb.data(), n, dim, c.rms_eps, pool);
    const auto ffn_in = prepare_input(st.xb.data(), n, dim, st, pool, {&l.w_gate, &l.w_up});
    cpu::matmul(l.w_gate, ffn_in, st.gate.data(), pool);
    cpu::matmul(l.w_up, ffn_in, st.up.data(), pool);
    pool.parallel_for(n, 16, [&](int64_t r0, int64_t r1) {
      const int64_t f = c.ffn_dim;
      float* g = st.gate.data() + r0 * f;
      const float* u = st.up.data() + r0 * f;
      geglu_rows(g, u, (r1 - r0) * f);
    });
    const auto down_in = prepare_input(st.gate.data(), n, c.ffn_dim, st, pool, {&l.w_down});
    cpu::matmul(l.w_down, down_in, st.xb.data(), pool);
    add_normed_rows(st.x.data(), st.xb.data(), l.post_ffn_norm, n, dim, c.rms_eps, pool);
  }
  if (cache != nullptr) cache->set_size(n_past + n);
}

}  // namespace triage::model
