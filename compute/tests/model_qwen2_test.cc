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
#include <vector>

#include <nlohmann/json.hpp>

#include "compute/model/errc.h"
#include "compute/model/model.h"
#include "compute/tests/test_files.h"
#include "compute/tests/tiny_gguf.h"

namespace {

using triage::model::model;
using triage::test::cosine;
using triage::test::file_guard;
using triage::test::tiny::vocab;

// What to leave out of the file (for the error test).
struct tiny_qwen2 {
  std::string drop_tensor;
};

// make_tiny_qwen2.py's model.
std::filesystem::path write_tiny_qwen2(const std::string& tag, const tiny_qwen2& opts = {}) {
  return triage::test::write_tiny_model("qwen2_" + tag, {.arch = "qwen2",
                                                         .freq_base = 1000000.0f,
                                                         .rms_eps = 1e-6f,
                                                         .rope_dimension_key = false,
                                                         .qkv_bias = true,
                                                         .drop_tensor = opts.drop_tensor});
}

nlohmann::json golden() {
  std::ifstream f(triage::test_files::golden_dir() / "tiny_qwen2.json");
  EXPECT_TRUE(f) << "compute/tests/golden/tiny_qwen2.json (set TRIAGE_SOURCE_DIR)";
  return nlohmann::json::parse(f);
}

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
