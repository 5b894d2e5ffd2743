#include "compute/model/weights.h"

#include <cstdint>
#include <optional>
#include <string>

#include "compute/cpu/dequantize.h"
#include "compute/model/errc.h"

namespace triage::model {

namespace {

std::string shape_string(std::span<const uint64_t> dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + ")";
}

result<gguf::tensor_info> find(const gguf::reader& g, const std::string& name,
                               std::initializer_list<uint64_t> expected) {
  auto t = g.find_tensor(name);
  if (!t) return make_error(errc::missing_tensor, g.name() + ": tensor '" + name + "' is missing");
  const gguf::tensor_info& info = t.value();
  const std::vector<uint64_t> want(expected);
  bool ok = info.n_dims == want.size();
  for (size_t i = 0; ok && i < want.size(); ++i) ok = info.ne[i] == want[i];
  if (!ok) {
    return make_error(errc::bad_shape, g.name() + ": tensor '" + name + "' has shape " +
                                           shape_string(info.dims()) + ", expected " +
                                           shape_string(want) + " [ne0, ne1]");
  }
  if (!cpu::can_matmul(info.type)) {
    return make_error(errc::unsupported_type,
                      g.name() + ": tensor '" + name + "' has type " +
                          std::string(gguf::type_name(info.type)) +
                          " (the CPU kernels read F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q6_K)");
  }
  return info;
}

// A (rows, cols) weight matrix: GGUF dims (cols, rows).
result<cpu::matrix_view> matrix(const gguf::reader& g, const std::string& name, int rows,
                                int cols) {
  auto t = find(g, name, {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)});
  if (!t) return t.error();
  return cpu::matrix_view::of(t.value());
}

// A vector of n floats: a view when stored as aligned F32, else converted.
result<std::span<const float>> vector(const gguf::reader& g, const std::string& name, int n,
                                      weights& w) {
  auto t = find(g, name, {static_cast<uint64_t>(n)});
  if (!t) return t.error();
  const gguf::tensor_info& info = t.value();
  const auto* p = info.data.data();
  if (info.type == gguf::tensor_type::f32 &&
      reinterpret_cast<uintptr_t>(p) % alignof(float) == 0) {
    return std::span<const float>(reinterpret_cast<const float*>(p), static_cast<size_t>(n));
  }
  auto buf = std::make_unique<float[]>(static_cast<size_t>(n));
  cpu::dequantize_row(info.type, p, buf.get(), n);
  w.converted.push_back(std::move(buf));
  return std::span<const float>(w.converted.back().get(), static_cast<size_t>(n));
}

}  // namespace

result<weights> load_weights(const gguf::reader& g, const config& c) {
  weights w;
  std::optional<error> failed;
  auto mat = [&](cpu::matrix_view& out, const std::string& name, int rows, int cols) {
    if (failed) return;
    auto r = matrix(g, name, rows, cols);
    if (r) {
      out = r.value();
    } else {
      failed = r.error();
    }
  };
  auto vec = [&](std::span<const float>& out, const std::string& name, int n) {
    if (failed) return;
    auto r = vector(g, name, n, w);
    if (r) {
      out = r.value();
    } else {
      failed = r.error();
    }
  };

  mat(w.token_embd, "token_embd.weight", c.vocab_size, c.dim);
  vec(w.output_norm, "output_norm.weight", c.dim);
  w.tied_output = !g.has_tensor("output.weight");
  if (w.tied_output) {
    w.output = w.token_embd;
  } else {
    mat(w.output, "output.weight", c.vocab_size, c.dim);
  }
  if (g.has_tensor("rope_freqs.weight")) vec(w.rope_freqs, "rope_freqs.weight", c.rope_dim / 2);
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < c.n_layers && !failed; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    layer_weights& l = w.layers[static_cast<size_t>(i)];
    vec(l.attn_norm, p + "attn_norm.weight", c.dim);
    mat(l.wq, p + "attn_q.weight", c.q_dim(), c.dim);
    mat(l.wk, p + "attn_k.weight", c.kv_dim(), c.dim);
    mat(l.wv, p + "attn_v.weight", c.kv_dim(), c.dim);
    mat(l.wo, p + "attn_output.weight", c.dim, c.q_dim());
    if (c.qkv_bias) {
      vec(l.bq, p + "attn_q.bias", c.q_dim());
      vec(l.bk, p + "attn_k.bias", c.kv_dim());
      vec(l.bv, p + "attn_v.bias", c.kv_dim());
    }
    if (c.arch == architecture::gemma3) {
      vec(l.attn_q_norm, p + "attn_q_norm.weight", c.head_dim);
      vec(l.attn_k_norm, p + "attn_k_norm.weight", c.head_dim);
      vec(l.post_attn_norm, p + "post_attention_norm.weight", c.dim);
      vec(l.post_ffn_norm, p + "post_ffw_norm.weight", c.dim);
    }
    vec(l.ffn_norm, p + "ffn_norm.weight", c.dim);
    mat(l.w_gate, p + "ffn_gate.weight", c.ffn_dim, c.dim);
    mat(l.w_up, p + "ffn_up.weight", c.ffn_dim, c.dim);
    mat(l.w_down, p + "ffn_down.weight", c.dim, c.ffn_dim);
  }
  if (failed) return *failed;
  return w;
}

}  // namespace triage::model
