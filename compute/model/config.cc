#include "compute/model/config.h"

#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "compute/model/errc.h"

namespace triage::model {

namespace {

// Reads `prefix + name` as a positive integer; absent -> fallback (or an
// error when the key is required, fallback < 0).
result<int> read_int(const gguf::reader& g, const std::string& key, int64_t fallback) {
  if (!g.contains(key)) {
    if (fallback >= 0) return static_cast<int>(fallback);
    return make_error(errc::missing_key, g.name() + ": '" + key + "' is missing");
  }
  auto v = g.get_uint(key);
  if (!v) return make_error(errc::bad_key, g.name() + ": '" + key + "': " + v.error().message);
  if (v.value() == 0 || v.value() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    return make_error(errc::bad_key, g.name() + ": '" + key + "' is " +
                                         std::to_string(v.value()) + ", expected 1 .. 2^31 - 1");
  }
  return static_cast<int>(v.value());
}

result<float> read_float(const gguf::reader& g, const std::string& key, float fallback,
                         bool required) {
  if (!g.contains(key)) {
    if (!required) return fallback;
    return make_error(errc::missing_key, g.name() + ": '" + key + "' is missing");
  }
  double v = 0;
  if (auto f = g.get_f32(key)) {
    v = f.value();
  } else if (auto d = g.get_f64(key)) {
    v = d.value();
  } else {
    return make_error(errc::bad_key, g.name() + ": '" + key + "': " + f.error().message);
  }
  if (!std::isfinite(v) || v <= 0) {
    return make_error(errc::bad_key, g.name() + ": '" + key + "' is " + std::to_string(v) +
                                         ", expected a positive number");
  }
  return static_cast<float>(v);
}

int32_t read_token_id(const gguf::reader& g, const std::string& key) {
  if (!g.contains(key)) return -1;
  auto v = g.get_uint(key);
  return v && v.value() <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max())
             ? static_cast<int32_t>(v.value())
             : -1;
}

}  // namespace

result<config> read_config(const gguf::reader& g) {
  auto arch = g.architecture();
  if (!arch) {
    return make_error(errc::missing_key,
                      g.name() + ": 'general.architecture' is missing or not a string");
  }
  config c;
  c.arch_name = std::string(arch.value());
  if (c.arch_name == "llama") {
    c.arch = architecture::llama;
  } else if (c.arch_name == "qwen2") {
    c.arch = architecture::qwen2;
    c.rope_neox = true;
    c.qkv_bias = true;
  } else if (c.arch_name == "gemma3") {
    c.arch = architecture::gemma3;
    c.rope_neox = true;
    c.embed_scale = true;
    c.swa_period = 6;
  } else {
    return make_error(errc::unsupported_architecture, g.name() + ": architecture '" +
                                                          c.arch_name +
                                                          "' (supported: llama, qwen2, gemma3)");
  }
  const std::string p = c.arch_name + ".";
  // Each read stores into its field, or leaves the first error in `failed`.
  std::optional<error> failed;
  auto read = [&](int& field, const char* key, int64_t fallback) {
    if (failed) return;
    auto r = read_int(g, p + key, fallback);
    if (r) {
      field = r.value();
    } else {
      failed = r.error();
    }
  };
  read(c.n_layers, "block_count", -1);
  read(c.dim, "embedding_length", -1);
  read(c.n_heads, "attention.head_count", -1);
  read(c.ffn_dim, "feed_forward_length", -1);
  read(c.context_length, "context_length", -1);
  if (failed) return *failed;
  read(c.n_kv_heads, "attention.head_count_kv", c.n_heads);
  if (c.dim % c.n_heads != 0 && !g.contains(p + "attention.key_length")) {
    return make_error(errc::bad_key, g.name() + ": '" + p + "embedding_length' (" +
                                         std::to_string(c.dim) + ") is not a multiple of '" + p +
                                         "attention.head_count' (" + std::to_string(c.n_heads) +
                                         ")");
  }
  read(c.head_dim, "attention.key_length", c.dim / c.n_heads);
  if (failed) return *failed;
  read(c.rope_dim, "rope.dimension_count", c.head_dim);
  int64_t vocab_fallback = -1;
  if (auto t = g.find_tensor("token_embd.weight"); t && t.value().n_dims == 2) {
    vocab_fallback = static_cast<int64_t>(t.value().ne[1]);
  }
  read(c.vocab_size, "vocab_size", vocab_fallback);
  if (failed) return *failed;
  if (g.contains(p + "attention.value_length")) {
    auto v = g.get_uint(p + "attention.value_length");
    if (!v || v.value() != static_cast<uint64_t>(c.head_dim)) {
      return make_error(errc::bad_key, g.name() + ": '" + p +
                                           "attention.value_length' differs from the key "
                                           "length; not supported");
    }
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return make_error(errc::bad_key, g.name() + ": '" + p + "attention.head_count' (" +
                                         std::to_string(c.n_heads) + ") is not a multiple of '" +
                                         p + "attention.head_count_kv' (" +
                                         std::to_string(c.n_kv_heads) + ")");
  }
  if (c.rope_dim % 2 != 0 || c.rope_dim > c.head_dim) {
    return make_error(errc::bad_key, g.name() + ": '" + p + "rope.dimension_count' (" +
                                         std::to_string(c.rope_dim) +
                                         ") must be even and at most the head size (" +
                                         std::to_string(c.head_dim) + ")");
  }
  auto eps = read_float(g, p + "attention.layer_norm_rms_epsilon", 0, true);
  if (!eps) return eps.error();
  c.rms_eps = eps.value();
  auto base = read_float(g, p + "rope.freq_base", 10000.0f, false);
  if (!base) return base.error();
  c.rope_freq_base = base.value();
  // RoPE scaling, read as llama.cpp reads it: the type defaults to linear;
  // the factor comes from rope.scaling.factor, else rope.scale_linear.
  {
    const std::string type_key = p + "rope.scaling.type";
    std::string type = "linear";
    if (g.contains(type_key)) {
      auto t = g.get_string(type_key);
      if (!t) return make_error(errc::bad_key, g.name() + ": '" + type_key + "': " + t.error().message);
      type = std::string(t.value());
    }
    if (type != "linear" && type != "none") {
      return make_error(errc::bad_key, g.name() + ": '" + type_key + "' is '" + type +
                                           "'; supported: linear, none");
    }
    std::string factor_key = p + "rope.scaling.factor";
    if (!g.contains(factor_key)) factor_key = p + "rope.scale_linear";
    if (type == "linear" && g.contains(factor_key)) {
      auto f = read_float(g, factor_key, 1.0f, false);
      if (!f) return f.error();
      c.rope_freq_scale = 1.0f / f.value();
    }
    const std::string attn_key = p + "rope.scaling.attn_factor";
    if (g.contains(attn_key)) {
      auto a = read_float(g, attn_key, 1.0f, false);
      if (!a) return a.error();
      if (a.value() != 1.0f) {
        return make_error(errc::bad_key, g.name() + ": '" + attn_key + "' is " +
                                             std::to_string(a.value()) +
                                             "; only 1 (no attention scaling) is supported");
      }
    }
  }
  if (c.arch == architecture::gemma3) {
    // llama.cpp scales queries by 1/sqrt(dim / n_heads) for Gemma 3 27B (the
    // 62-layer model: query_pre_attn_scalar), by 1/sqrt(head_dim) otherwise.
    if (c.n_layers == 62) c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.dim / c.n_heads));
    if (g.contains(p + "attention.sliding_window")) {
      read(c.sliding_window, "attention.sliding_window", -1);
      if (failed) return *failed;
    }
  }
  c.bos_id = read_token_id(g, "tokenizer.ggml.bos_token_id");
  c.eos_id = read_token_id(g, "tokenizer.ggml.eos_token_id");
  return c;
}

}  // namespace triage::model
