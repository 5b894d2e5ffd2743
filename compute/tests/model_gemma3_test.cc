// The gemma3 forward pass on the real Gemma 3 270M Q4_K_M file against
// llama.cpp (golden files from compute/tests/golden/make_gemma_goldens.py):
// last-token logits (top 50 and a fixed sample of every 64th id of the
// 262k vocabulary, stored as F16), greedy continuations, the sliding window
// (a prompt longer than the 512-position window) and ragged batches. The
// model comes from $TRIAGE_GEMMA_MODEL or
// ~/.cache/triage/models/gemma-3-270m-q4_k_m.gguf (ops/setup.sh installs it;
// its absence is a failure, not a skip). Labelled `model`: a few seconds in
// Release, too slow for the Debug ASan pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compute/model/model.h"
#include "compute/tests/test_files.h"
#include "compute/tests/tiny_gguf.h"
#include "compute/tokenizer/tokenizer.h"

namespace {

using triage::model::model;
using triage::test::cosine;
using triage::test::gemma_path;
using triage::test::max_abs_diff;
using triage::test_files::golden_dir;

struct golden_prompt {
  std::string name;
  std::vector<int32_t> tokens;
  std::vector<int32_t> top_ids;
  std::vector<float> top_logits;
  std::vector<float> sample;  // logits of ids 0, stride, 2 * stride, ...
  // llama.cpp against these goldens with micro-batches of 7 tokens (only
  // its summation order changes), scored as the engine is.
  double llama_self_cosine = 0;
  std::vector<int32_t> greedy;
  std::vector<std::vector<int32_t>> step_ids;  // llama.cpp's top 5 at each greedy step
  std::vector<std::vector<float>> step_logits;
};

int sample_stride = 0;

std::vector<golden_prompt> load_golden() {
  std::ifstream f(golden_dir() / "gemma_logits.json");
  if (!f) return {};
  const auto j = nlohmann::json::parse(f);
  const auto& meta = j.at("_meta");
  // The configuration the thresholds below were measured against.
  if (meta.value("flash_attn", true) || meta.value("kv_type", std::string()) != "f16") return {};
  sample_stride = meta.at("sample_stride").get<int>();
  const auto n_sample = meta.at("n_sample").get<size_t>();
  std::ifstream bin(golden_dir() / meta.at("sample_file").get<std::string>(), std::ios::binary);
  std::vector<golden_prompt> out;
  for (const auto& p : j.at("prompts")) {
    golden_prompt g;
    g.name = p.at("name").get<std::string>();
    g.tokens = p.at("ids").get<std::vector<int32_t>>();
    g.top_ids = p.at("top_ids").get<std::vector<int32_t>>();
    g.top_logits = p.at("top_logits").get<std::vector<float>>();
    g.llama_self_cosine = p.value("llama_self_cosine", 0.0);
    if (p.contains("greedy")) {
      g.greedy = p.at("greedy").get<std::vector<int32_t>>();
      for (const auto& step : p.at("greedy_steps")) {
        g.step_ids.push_back(step.at("ids").get<std::vector<int32_t>>());
        g.step_logits.push_back(step.at("logits").get<std::vector<float>>());
      }
    }
    g.sample = triage::test::read_f16(bin, n_sample);
    if (g.sample.empty()) return {};
    out.push_back(std::move(g));
  }
  return out;
}

class model_gemma3 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto path = gemma_path();
    if (!std::filesystem::exists(path)) return;
    auto m = model::load(path.string(), {.threads = 2});
    if (m) {
      instance = new model(std::move(m.value()));
    } else {
      load_error = m.error().what();
    }
    golden = load_golden();
  }
  static void TearDownTestSuite() {
    delete instance;
    instance = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(gemma_path()))
        << gemma_path() << " not found: set TRIAGE_GEMMA_MODEL or install it (ops/setup.sh)";
    ASSERT_NE(instance, nullptr) << load_error;
    ASSERT_FALSE(golden.empty()) << "golden files missing in " << golden_dir()
                                 << " or not made with flash_attn false and an F16 K/V cache";
  }
  static inline model* instance = nullptr;
  static inline std::string load_error;
  static inline std::vector<golden_prompt> golden;
};

// Our logits at the golden's points: the sampled ids, then the top 50.
struct compared {
  std::vector<float> ours, ref;
};
compared at_golden_points(std::span<const float> logits, const golden_prompt& g) {
  compared c;
  for (size_t i = 0; i < g.sample.size(); ++i) {
    c.ours.push_back(logits[i * static_cast<size_t>(sample_stride)]);
    c.ref.push_back(g.sample[i]);
  }
  for (size_t i = 0; i < g.top_ids.size(); ++i) {
    c.ours.push_back(logits[static_cast<size_t>(g.top_ids[i])]);
    c.ref.push_back(g.top_logits[i]);
  }
  return c;
}

// How the engine relates to llama.cpp on this file. The goldens are
// llama.cpp's non-flash attention path with its F16 K/V cache (the library
// defaults, stated in make_gemma_goldens.py and checked in _meta below), which
// model_options::f16_attention reproduces. Gemma's attn_output and ffn_down
// are K-quants (Q4_K, Q6_K). The engine rounds Q6_K's activations as
// llama.cpp's Q8_K (per 256 values, float scale) and Q4_K's per 32 values
// with an F16 scale (cpu/quantize.h says why). RoPE is fused as llama.cpp's
// build fuses it (cpu/ops.cc). Measured cosines (4096 sampled ids plus the
// top 50): short 0.99950, capital 0.99969, ticket 0.99772, chat 0.99925,
// unicode 0.99907, long (662 tokens) 0.99903; max|diff| 0.65 .. 1.14. GELU
// equals ggml's F16 table in all 65536 entries (gemma3.cc).
// Why "ticket" stays below 0.999: op by op on llama.cpp's own inputs (its
// tensors read through the eval callback) every step agrees to float
// rounding: Q5_0/Q8_0 matmuls and RoPE bit for bit, attention on 447 of 450
// head-rows; K-quant dot products (another summation order) and softmax's
// exp differ by an ulp. The prompt amplifies such differences through the
// next 8-bit rounding, and llama.cpp does not reproduce itself there either:
// the same settings with n_ubatch 7 instead of one micro-batch give cosine
// 0.99437 on "ticket" (recorded per prompt by make_gemma_goldens.py as
// llama_self_cosine; 0.9968 with an F32 cache, 0.9922 with flash attention
// on the sampled ids alone), 0.9994 .. 1.0 on the others.
// So: top-1 equal where llama.cpp's top-2 margin is at least near_tie;
// cosine >= 0.999 per prompt, or >= llama.cpp's own reproducibility on a
// prompt where that is lower; >= 0.999 on average; max|diff| < 1.25.
constexpr float near_tie = 0.25f;

TEST_F(model_gemma3, reads_the_gemma3_hyperparameters) {
  const auto& c = instance->cfg();
  EXPECT_EQ(c.arch, triage::model::architecture::gemma3);
  EXPECT_EQ(c.n_layers, 18);
  EXPECT_EQ(c.dim, 640);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.q_dim(), 1024);
  EXPECT_EQ(c.sliding_window, 512);
  EXPECT_EQ(c.vocab_size, 262144);
  EXPECT_FLOAT_EQ(c.rope_freq_base, 1e6f);
  EXPECT_FLOAT_EQ(c.rope_freq_base_swa, 1e4f);
  // Every 6th layer is global (llama.cpp's pattern for gemma3).
  for (int l = 0; l < c.n_layers; ++l) EXPECT_EQ(c.is_local(l), l % 6 != 5) << l;
}

TEST_F(model_gemma3, last_token_logits_match_llama_cpp) {
  double cos_sum = 0;
  for (const auto& g : golden) {
    const auto t0 = std::chrono::steady_clock::now();
    auto out = instance->forward(std::vector<std::vector<int32_t>>{g.tokens}, {.want_logits = true});
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const auto logits = out.logits_of(0);
    const auto top1 = std::max_element(logits.begin(), logits.end()) - logits.begin();
    const auto c = at_golden_points(logits, g);
    const double cos = cosine(c.ours, c.ref);
    const double diff = max_abs_diff(c.ours, c.ref);
    std::printf("%-8s %3zu tokens  top-1 %6ld (llama.cpp %6d, margin %.3f)  cosine %.6f  "
                "max|diff| %.4f  %.0f ms\n",
                g.name.c_str(), g.tokens.size(), static_cast<long>(top1), g.top_ids[0],
                g.top_logits[0] - g.top_logits[1], cos, diff, ms);
    if (g.top_logits[0] - g.top_logits[1] >= near_tie) {
      EXPECT_EQ(top1, g.top_ids[0]) << g.name;
    }
    ASSERT_GT(g.llama_self_cosine, 0.9) << g.name << ": no llama_self_cosine in gemma_logits.json "
                                         << "(regenerate it with make_gemma_goldens.py)";
    EXPECT_GE(cos, std::min(0.999, g.llama_self_cosine)) << g.name;
    EXPECT_LT(diff, 1.25) << g.name;
    cos_sum += cos;
  }
  EXPECT_GE(cos_sum / static_cast<double>(golden.size()), 0.999);
}

// Our tokenizer gives the prompts' ids exactly as llama.cpp did (add_special
// puts <bos> first, parse_special reads <start_of_turn>).
TEST_F(model_gemma3, tokenizer_reproduces_the_prompt_ids) {
  auto t = triage::tokenizer::tokenizer::from_gguf(instance->gguf());
  ASSERT_TRUE(t) << t.error().what();
  std::ifstream f(golden_dir() / "gemma_logits.json");
  const auto j = nlohmann::json::parse(f);
  for (const auto& p : j.at("prompts")) {
    EXPECT_EQ(t.value().encode(p.at("text").get<std::string>(), true, true),
              p.at("ids").get<std::vector<int32_t>>())
        << p.at("name");
  }
}

// Free-running greedy decoding (KV cache) reproduces llama.cpp's continuation
// up to its first near-tie at least; teacher-forced on llama.cpp's
// continuation, every step's choice is one llama.cpp ranks within near_tie
// of its best.
TEST_F(model_gemma3, greedy_continuation_matches_llama_cpp) {
  int checked = 0;
  for (const auto& g : golden) {
    if (g.greedy.empty()) continue;
    ASSERT_EQ(g.step_ids.size(), g.greedy.size());
    const auto ids = instance->generate_greedy(g.tokens, static_cast<int>(g.greedy.size()));
    size_t same = 0;
    while (same < ids.size() && ids[same] == g.greedy[same]) ++same;
    size_t first_tie = 0;
    float min_margin = 1e9f;
    while (first_tie < g.greedy.size() &&
           g.step_logits[first_tie][0] - g.step_logits[first_tie][1] >= near_tie) {
      ++first_tie;
    }
    for (const auto& s : g.step_logits) min_margin = std::min(min_margin, s[0] - s[1]);
    std::printf("%-8s greedy: %zu of %zu tokens identical (llama.cpp's first near-tie at step "
                "%zu, smallest top-2 margin %.3f)\n",
                g.name.c_str(), same, g.greedy.size(), first_tie, min_margin);
    EXPECT_GE(same, first_tie) << g.name;
    if (same < g.greedy.size()) {
      std::printf("%-8s first difference at step %zu: ours %d, llama.cpp %d (its top-2 margin "
                  "%.3f)\n",
                  g.name.c_str(), same, ids[same], g.greedy[same],
                  g.step_logits[same][0] - g.step_logits[same][1]);
    }

    std::vector<int32_t> forced = g.tokens;
    forced.insert(forced.end(), g.greedy.begin(), g.greedy.end() - 1);
    auto out = instance->forward(std::vector<std::vector<int32_t>>{forced}, {.all_logits = true});
    int agree = 0;
    for (size_t t = 0; t < g.greedy.size(); ++t) {
      const size_t row = g.tokens.size() - 1 + t;
      std::span<const float> l(out.all_logits.data() + row * out.vocab, static_cast<size_t>(out.vocab));
      const auto ours = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
      if (ours == g.greedy[t]) {
        ++agree;
        continue;
      }
      const auto& top = g.step_ids[t];
      const auto it = std::find(top.begin(), top.end(), ours);
      ASSERT_NE(it, top.end()) << g.name << " step " << t << ": " << ours << " not in llama.cpp's top 5";
      EXPECT_GE(g.step_logits[t][static_cast<size_t>(it - top.begin())], g.step_logits[t][0] - near_tie)
          << g.name << " step " << t;
    }
    std::printf("%-8s teacher-forced: %d of %zu steps choose llama.cpp's token\n", g.name.c_str(),
                agree, g.greedy.size());
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

// Sequences of a ragged batch (one of them past the window) give the same
// logits as each run alone.
TEST_F(model_gemma3, ragged_batch_equals_sequences_alone) {
  std::vector<std::vector<int32_t>> seqs;
  for (const auto& g : golden) {
    if (g.name == "capital" || g.name == "ticket" || g.name == "long") seqs.push_back(g.tokens);
  }
  ASSERT_EQ(seqs.size(), 3u);
  auto batch = instance->forward(seqs, {.want_logits = true});
  for (size_t s = 0; s < seqs.size(); ++s) {
    auto alone = instance->forward(std::vector<std::vector<int32_t>>{seqs[s]}, {.want_logits = true});
    const auto a = alone.logits_of(0);
    const auto b = batch.logits_of(static_cast<int64_t>(s));
    EXPECT_LT(max_abs_diff(a, b), 1e-3) << "sequence " << s;
  }
}

}  // namespace
