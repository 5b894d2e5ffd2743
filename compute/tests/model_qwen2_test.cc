// The qwen2 architecture (Q/K/V biases, NeoX RoPE) against llama.cpp, on a
// tiny model that this test writes with the project's GGUF writer. Its
// weights come from a counter-based hash that golden/make_tiny_qwen2.py
// reproduces bit for bit; that script wrote the same model with gguf-py, ran
// it in llama.cpp and saved every token's logits and a greedy continuation
// (golden/tiny_qwen2.json). No model file is committed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "compute/gguf/writer.h"
#include "compute/model/errc.h"
#include "compute/model/model.h"
#include "compute/tests/test_files.h"

namespace {

using triage::gguf::tensor_type;
using triage::gguf::value;
using triage::model::model;

constexpr uint32_t dim = 64, n_heads = 4, n_kv_heads = 2, ffn = 128, layers = 2, context = 256;
constexpr uint32_t head_dim = dim / n_heads;
constexpr uint32_t vocab = 260;

// Uniform in [-0.5, 0.5): the low 24 bits of a splitmix64-style hash of
// (tensor, element). Same arithmetic as value() in make_tiny_qwen2.py.
std::vector<float> hashed(uint64_t tensor, size_t count) {
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

// What to leave out of the file (for the error test).
struct tiny_qwen2 {
  std::string drop_tensor;
};

std::filesystem::path write_tiny_qwen2(const std::string& tag, const tiny_qwen2& opts = {}) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("triage_qwen2_" + tag + "_" + std::to_string(::getpid()) + ".gguf");
  triage::gguf::writer w;
  w.set("general.architecture", value::string("qwen2"));
  w.set("qwen2.block_count", value::u32(layers));
  w.set("qwen2.context_length", value::u32(context));
  w.set("qwen2.embedding_length", value::u32(dim));
  w.set("qwen2.feed_forward_length", value::u32(ffn));
  w.set("qwen2.attention.head_count", value::u32(n_heads));
  w.set("qwen2.attention.head_count_kv", value::u32(n_kv_heads));
  w.set("qwen2.rope.freq_base", value::f32(1000000.0f));
  w.set("qwen2.attention.layer_norm_rms_epsilon", value::f32(1e-6f));
  w.set("tokenizer.ggml.eos_token_id", value::u32(257));

  uint64_t n = 0;  // tensor number, in the script's order
  const auto add = [&](const std::string& name, std::vector<float> v, std::vector<uint64_t> dims) {
    ++n;
    if (name == opts.drop_tensor) return;
    w.add_tensor(name, tensor_type::f32, dims, std::as_bytes(std::span<const float>(v)));
  };
  const auto mat = [&](const std::string& name, uint32_t rows, uint32_t cols, float gain) {
    const float scale = gain / std::sqrt(static_cast<float>(cols)) * 2.0f;
    auto v = hashed(n, static_cast<size_t>(rows) * cols);
    for (auto& x : v) x *= scale;
    add(name, std::move(v), {cols, rows});
  };
  const auto norm = [&](const std::string& name, uint32_t size) {
    auto v = hashed(n, size);
    for (auto& x : v) x = 1.0f + x * 0.2f;
    add(name, std::move(v), {size});
  };
  const auto bias = [&](const std::string& name, uint32_t size) {
    auto v = hashed(n, size);
    for (auto& x : v) x *= 0.5f;
    add(name, std::move(v), {size});
  };
  mat("token_embd.weight", vocab, dim, 16.0f);
  norm("output_norm.weight", dim);
  mat("output.weight", vocab, dim, 4.0f);
  for (uint32_t l = 0; l < layers; ++l) {
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
  auto ok = w.write_file(path);
  EXPECT_TRUE(ok) << ok.error().what();
  return path;
}

nlohmann::json golden() {
  std::ifstream f(triage::test_files::golden_dir() / "tiny_qwen2.json");
  EXPECT_TRUE(f) << "compute/tests/golden/tiny_qwen2.json (set TRIAGE_SOURCE_DIR)";
  return nlohmann::json::parse(f);
}

double cosine(std::span<const float> a, std::span<const float> b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

class file_guard {
 public:
  explicit file_guard(std::filesystem::path p) : path_(std::move(p)) {}
  ~file_guard() { std::filesystem::remove(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Every token's logits of three ragged sequences, in one batch, against
// llama.cpp. Both keep K and V in F16 (llama.cpp's default cache type; the
// engine's f16_attention); weights are F32, so the remaining difference is
// summation order: measured max |diff| 1.9e-6 (cosine 1.0000000) on logits
// of magnitude ~5; the bounds leave a factor 50 for other compilers and ISAs.
TEST(model_qwen2, logits_match_llama_cpp) {
  const auto g = golden();
  file_guard f(write_tiny_qwen2("logits"));
  auto m = model::load(f.path().string(), {.threads = 2});
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m.value().cfg().arch, triage::model::architecture::qwen2);
  std::vector<std::vector<int32_t>> seqs;
  for (const auto& s : g["sequences"]) seqs.push_back(s["ids"].get<std::vector<int32_t>>());
  const auto out = m.value().forward(seqs, {.all_logits = true});
  ASSERT_EQ(out.vocab, static_cast<int>(vocab));
  double worst_cos = 1, worst_diff = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto& rows = g["sequences"][s]["logits"];
    ASSERT_EQ(rows.size(), seqs[s].size());
    for (size_t t = 0; t < seqs[s].size(); ++t) {
      const auto want = rows[t].get<std::vector<float>>();
      const std::span<const float> got(out.all_logits.data() + (out.offsets[s] + static_cast<int64_t>(t)) * vocab,
                                       vocab);
      worst_cos = std::min(worst_cos, cosine(got, want));
      for (size_t v = 0; v < vocab; ++v) worst_diff = std::max(worst_diff, std::fabs(double(got[v]) - want[v]));
      EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(),
                std::max_element(want.begin(), want.end()) - want.begin())
          << "sequence " << s << " token " << t;
    }
  }
  std::printf("tiny qwen2 vs llama.cpp: min cosine %.8f, max |diff| %.2e\n", worst_cos, worst_diff);
  EXPECT_GT(worst_cos, 0.999999);
  EXPECT_LT(worst_diff, 1e-4);
}

TEST(model_qwen2, greedy_continuation_matches_llama_cpp) {
  const auto g = golden();
  file_guard f(write_tiny_qwen2("greedy"));
  auto m = model::load(f.path().string(), {.threads = 2});
  ASSERT_TRUE(m) << m.error().what();
  const auto prompt = g["greedy"]["prompt"].get<std::vector<int32_t>>();
  const auto want = g["greedy"]["tokens"].get<std::vector<int32_t>>();
  EXPECT_EQ(m.value().generate_greedy(prompt, static_cast<int>(want.size())), want);
}

// The same model read as llama (no biases, pairwise RoPE) must not match:
// the goldens do pin down what qwen2 adds.
TEST(model_qwen2, architecture_differences_matter) {
  const auto g = golden();
  file_guard f(write_tiny_qwen2("asllama"));
  auto m = model::load(f.path().string(), {.threads = 1});
  ASSERT_TRUE(m);
  const auto ids = g["sequences"][2]["ids"].get<std::vector<int32_t>>();
  const auto want = g["sequences"][2]["logits"].back().get<std::vector<float>>();
  // Forward with the biases and the RoPE mode switched off one at a time.
  auto& cfg = const_cast<triage::model::config&>(m.value().cfg());
  for (int variant = 0; variant < 2; ++variant) {
    cfg.qkv_bias = variant != 0;
    cfg.rope_neox = variant == 0;
    const auto out = m.value().forward(std::vector<std::vector<int32_t>>{ids}, {.want_logits = true});
    EXPECT_LT(cosine(out.logits_of(0), want), 0.9999) << "variant " << variant;
  }
}

TEST(model_qwen2, missing_bias_is_named) {
  file_guard f(write_tiny_qwen2("nobias", {.drop_tensor = "blk.1.attn_k.bias"}));
  auto m = model::load(f.path().string());
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, triage::model::errc::missing_tensor);
  EXPECT_NE(m.error().message.find("'blk.1.attn_k.bias' is missing"), std::string::npos)
      << m.error().message;
}

}  // namespace
