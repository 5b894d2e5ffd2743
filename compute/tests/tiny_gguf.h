// tiny_gguf.h: helpers shared by the model tests: tiny llama / qwen2 GGUF
// files written with the project's writer (the weights of
// golden/make_tiny_qwen2.py and golden/make_tiny_rope.py, bit for bit),
// the Gemma 3 file's location, cosine similarity, largest difference, F16
// golden rows, and a guard that deletes a temporary file.
//
//   triage::test::file_guard f(triage::test::write_tiny_model(
//       "qwen2_logits", {.arch = "qwen2", .freq_base = 1e6f, .rms_eps = 1e-6f,
//                        .qkv_bias = true}));
//   auto m = triage::model::model::load(f.path().string());
//   double c = triage::test::cosine(got, want);
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <istream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "compute/cpu/half.h"
#include "compute/gguf/writer.h"

namespace triage::test {

// Cosine similarity, accumulated in double.
inline double cosine(std::span<const float> a, std::span<const float> b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

inline double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return m;
}

// Reads `count` F16 values (a golden logits row) from `in` as floats; empty
// when the stream ends first.
inline std::vector<float> read_f16(std::istream& in, size_t count) {
  std::vector<uint16_t> h(count);
  in.read(reinterpret_cast<char*>(h.data()), static_cast<std::streamsize>(h.size() * 2));
  if (!in) return {};
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = cpu::fp16_to_fp32(h[i]);
  return out;
}

// $TRIAGE_GEMMA_MODEL, else the Gemma 3 270M file ops/setup.sh installs.
inline std::filesystem::path gemma_path() {
  if (const char* env = std::getenv("TRIAGE_GEMMA_MODEL"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : "") /
         ".cache/triage/models/gemma-3-270m-q4_k_m.gguf";
}

// Deletes the file when it goes.
class file_guard {
 public:
  explicit file_guard(std::filesystem::path p) : path_(std::move(p)) {}
  file_guard(const file_guard&) = delete;
  file_guard& operator=(const file_guard&) = delete;
  ~file_guard() { std::filesystem::remove(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Uniform in [-0.5, 0.5): the low 24 bits of a splitmix64-style hash of
// (tensor, element). Same arithmetic as value() in make_tiny_qwen2.py.
inline std::vector<float> hashed(uint64_t tensor, size_t count) {
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) {
    uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ull + tensor * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    out[i] = static_cast<float>(h & 0xFFFFFF) * (1.0f / 16777216.0f) - 0.5f;
  }
  return out;
}

// The tiny models' fixed shapes (the scripts' constants).
namespace tiny {
constexpr uint32_t dim = 64, n_heads = 4, n_kv_heads = 2, ffn = 128, context = 256;
constexpr uint32_t head_dim = dim / n_heads;
constexpr uint32_t vocab = 260;
}  // namespace tiny

// What write_tiny_model() writes. The defaults are make_tiny_rope.py's
// unscaled llama but for the tensor numbering and the layer count.
struct tiny_model_spec {
  // general.architecture, the prefix of the keys: "llama" or "qwen2".
  // Default: "llama".
  std::string arch = "llama";
  // <arch>.block_count. Default: 2.
  uint32_t layers = 2;
  // <arch>.rope.freq_base. Default: 10000.
  float freq_base = 10000.0f;
  // <arch>.attention.layer_norm_rms_epsilon. Default: 1e-5.
  float rms_eps = 1e-5f;
  // Write <arch>.rope.dimension_count (head_dim). Default: true.
  bool rope_dimension_key = true;
  // Number of the first tensor in the hash (make_tiny_rope.py: 1000,
  // make_tiny_qwen2.py: 0). Default: 0.
  uint64_t tensor_base = 0;
  // blk.N.attn_{q,k,v}.bias after each projection (qwen2). Default: false.
  bool qkv_bias = false;
  // Extra metadata (e.g. rope.scaling.*), written after the fixed keys.
  // Default: none.
  std::vector<std::pair<std::string, gguf::value>> extra_keys = {};
  // rope_freqs.weight, written last (empty: none). Default: empty.
  std::vector<float> rope_freqs = {};
  // A tensor to leave out (it still takes its number). Default: none.
  std::string drop_tensor = {};
};

// Writes the model to a temporary file named after `tag` and the process id
// and returns its path; a write failure is a test failure.
inline std::filesystem::path write_tiny_model(const std::string& tag,
                                              const tiny_model_spec& spec) {
  using namespace tiny;
  using gguf::value;
  const auto path = std::filesystem::temp_directory_path() /
                    ("triage_tiny_" + tag + "_" + std::to_string(::getpid()) + ".gguf");
  const std::string& a = spec.arch;
  gguf::writer w;
  w.set("general.architecture", value::string(a));
  w.set(a + ".block_count", value::u32(spec.layers));
  w.set(a + ".context_length", value::u32(context));
  w.set(a + ".embedding_length", value::u32(dim));
  w.set(a + ".feed_forward_length", value::u32(ffn));
  w.set(a + ".attention.head_count", value::u32(n_heads));
  w.set(a + ".attention.head_count_kv", value::u32(n_kv_heads));
  if (spec.rope_dimension_key) w.set(a + ".rope.dimension_count", value::u32(head_dim));
  w.set(a + ".rope.freq_base", value::f32(spec.freq_base));
  w.set(a + ".attention.layer_norm_rms_epsilon", value::f32(spec.rms_eps));
  w.set("tokenizer.ggml.eos_token_id", value::u32(257));
  for (const auto& [key, v] : spec.extra_keys) w.set(key, v);

  uint64_t n = spec.tensor_base;  // tensor number, in the scripts' order
  const auto add = [&](const std::string& name, const std::vector<float>& v,
                       std::vector<uint64_t> dims) {
    ++n;
    if (name == spec.drop_tensor) return;
    w.add_tensor(name, gguf::tensor_type::f32, dims, std::as_bytes(std::span<const float>(v)));
  };
  const auto mat = [&](const std::string& name, uint32_t rows, uint32_t cols, float gain) {
    const float scale = gain / std::sqrt(static_cast<float>(cols)) * 2.0f;
    auto v = hashed(n, static_cast<size_t>(rows) * cols);
    for (auto& x : v) x *= scale;
    add(name, v, {cols, rows});
  };
  const auto norm = [&](const std::string& name, uint32_t size) {
    auto v = hashed(n, size);
    for (auto& x : v) x = 1.0f + x * 0.2f;
    add(name, v, {size});
  };
  const auto bias = [&](const std::string& name, uint32_t size) {
    if (!spec.qkv_bias) return;
    auto v = hashed(n, size);
    for (auto& x : v) x *= 0.5f;
    add(name, v, {size});
  };
  mat("token_embd.weight", vocab, dim, 16.0f);
  norm("output_norm.weight", dim);
  mat("output.weight", vocab, dim, 4.0f);
  for (uint32_t l = 0; l < spec.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight", dim);
    mat(p + "attn_q.weight", n_heads * head_dim, dim, 2.0f);
    bias(p + "attn_q.bias", n_heads * head_dim);
    mat(p + "attn_k.weight", n_kv_heads * head_dim, dim, 2.0f);
    bias(p + "attn_k.bias", n_kv_heads * head_dim);
    mat(p + "attn_v.weight", n_kv_heads * head_dim, dim, 1.0f);
    bias(p + "attn_v.bias", n_kv_heads * head_dim);
    mat(p + "attn_output.weight", dim, n_heads * head_dim, 0.5f);
    norm(p + "ffn_norm.weight", dim);
    mat(p + "ffn_gate.weight", ffn, dim, 1.0f);
    mat(p + "ffn_up.weight", ffn, dim, 1.0f);
    mat(p + "ffn_down.weight", dim, ffn, 0.5f);
  }
  if (!spec.rope_freqs.empty()) add("rope_freqs.weight", spec.rope_freqs, {head_dim / 2});
  auto ok = w.write_file(path);
  EXPECT_TRUE(ok) << ok.error().what();
  return path;
}

}  // namespace triage::test
