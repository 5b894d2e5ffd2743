// The llama forward pass on the real SmolLM2-135M-Instruct Q4_1 file against
// llama.cpp (golden files from compute/tests/golden/make_logits.py): last-token
// logits, pooled hidden states, greedy continuations; and the ragged batch
// against sequences run alone. The model comes from $TRIAGE_MODEL or
// ~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf; CI installs it, so
// its absence is a failure, not a skip.
#include <gtest/gtest.h>

#include "compute/tests/test_files.h"
#include "compute/tests/tiny_gguf.h"

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

#include "compute/cpu/cpu_features.h"
#include "compute/model/model.h"

namespace {

using triage::model::model;
using triage::model::pooling;

using triage::test::cosine;
using triage::test::max_abs_diff;
using triage::test_files::golden_dir;
using triage::test_files::model_path;

struct golden_prompt {
  std::string name;
  std::vector<int32_t> tokens;
  std::vector<int32_t> top_ids;
  std::vector<float> top_logits;
  std::vector<float> logits;  // full vector (from F16)
  std::vector<int32_t> greedy;
  std::vector<std::vector<int32_t>> step_ids;   // llama.cpp's top 5 at each greedy step
  std::vector<std::vector<float>> step_logits;
  std::vector<float> pooled_last, pooled_mean;
};

std::vector<golden_prompt> load_golden() {
  std::ifstream f(golden_dir() / "logits.json");
  if (!f) return {};
  const auto j = nlohmann::json::parse(f);
  const int n_vocab = j.at("n_vocab").get<int>();
  std::ifstream bin(golden_dir() / j.at("logits_f16").get<std::string>(), std::ios::binary);
  std::vector<golden_prompt> out;
  for (const auto& p : j.at("prompts")) {
    golden_prompt g;
    g.name = p.at("name").get<std::string>();
    g.tokens = p.at("tokens").get<std::vector<int32_t>>();
    g.top_ids = p.at("top_ids").get<std::vector<int32_t>>();
    g.top_logits = p.at("top_logits").get<std::vector<float>>();
    if (p.contains("greedy")) g.greedy = p.at("greedy").get<std::vector<int32_t>>();
    if (p.contains("greedy_top5")) {
      for (const auto& step : p.at("greedy_top5")) {
        g.step_ids.push_back(step.at("ids").get<std::vector<int32_t>>());
        g.step_logits.push_back(step.at("logits").get<std::vector<float>>());
      }
    }
    if (p.contains("pooled_last")) g.pooled_last = p.at("pooled_last").get<std::vector<float>>();
    if (p.contains("pooled_mean")) g.pooled_mean = p.at("pooled_mean").get<std::vector<float>>();
    g.logits = triage::test::read_f16(bin, static_cast<size_t>(n_vocab));
    out.push_back(std::move(g));
  }
  return out;
}

class model_smollm2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto path = model_path();
    if (!std::filesystem::exists(path)) return;
    auto m = model::load(path.string(), {.threads = 2});
    if (m) instance = new model(std::move(m.value()));
    else load_error = m.error().what();
    golden = load_golden();
  }
  static void TearDownTestSuite() {
    delete instance;
    instance = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(model_path()))
        << model_path() << " not found: set TRIAGE_MODEL or install it (ops/setup.sh)";
    ASSERT_NE(instance, nullptr) << load_error;
    ASSERT_FALSE(golden.empty()) << "golden files missing in " << golden_dir();
  }
  static inline model* instance = nullptr;
  static inline std::string load_error;
  static inline std::vector<golden_prompt> golden;
};

// How the engine relates to llama.cpp. Dumping every intermediate tensor of
// both (ggml's eval callback) shows them bit-identical (same activation
// quantization, same summation orders in the AVX2/AVX-512 matmuls and
// attention, RoPE fused as llama.cpp's build fuses it) until one attention
// weight rounds to a different F16 value, because the two exp
// implementations differ in the last bit; a few layers on, that can shift an
// activation across a rounding boundary of the 8-bit quantization. Measured
// (AVX2 and AVX-512 VNNI paths alike): short and capital cosine 1.000000
// (max|diff| 0.008, the golden's F16 steps), ticket 0.999078, chatml
// 0.999976, unicode 0.999846, long 0.999672; same top-1 on all six. The
// scalar path sums in another order (capital 0.99835, ticket 0.99734).
// So: a choice counts as agreeing when llama.cpp ranks it within `near_tie`
// of its own best; the 1-token prompt must match within the F16 precision of
// the golden file; cosine >= 0.999 per prompt with the AVX2 or AVX-512 paths
// (>= 0.995 on the scalar one), >= 0.999 on average; KL(llama.cpp || engine)
// < 0.02 nats.
constexpr float near_tie = 0.5f;

double kl_divergence(std::span<const float> ref, std::span<const float> x) {
  auto log_softmax = [](std::span<const float> v) {
    const double mx = *std::max_element(v.begin(), v.end());
    double s = 0;
    for (float e : v) s += std::exp(e - mx);
    std::vector<double> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = v[i] - mx - std::log(s);
    return out;
  };
  const auto lp = log_softmax(ref), lq = log_softmax(x);
  double kl = 0;
  for (size_t i = 0; i < lp.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return kl;
}

TEST_F(model_smollm2, last_token_logits_match_llama_cpp) {
  double cos_sum = 0;
  for (const auto& g : golden) {
    const std::vector<std::vector<int32_t>> seqs{g.tokens};
    const auto t0 = std::chrono::steady_clock::now();
    auto out = instance->forward(seqs, {.want_logits = true});
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const auto logits = out.logits_of(0);
    const auto top1 = std::max_element(logits.begin(), logits.end()) - logits.begin();
    const double cos = cosine(logits, g.logits);
    const double kl = kl_divergence(g.logits, logits);
    double top_diff = 0;
    for (size_t i = 0; i < g.top_ids.size(); ++i) {
      top_diff = std::max(
          top_diff, std::fabs(static_cast<double>(logits[g.top_ids[i]]) - g.top_logits[i]));
    }
    const double all_diff = max_abs_diff(logits, g.logits);
    std::printf("%-8s %3zu tokens  top-1 %5ld (llama.cpp %5d, margin %.3f)  cosine %.6f  "
                "max|diff| %.4f (top-50: %.4f)  KL %.1e  %.0f ms\n",
                g.name.c_str(), g.tokens.size(), static_cast<long>(top1), g.top_ids[0],
                g.top_logits[0] - g.top_logits[1], cos, all_diff, top_diff, kl, ms);
    // Our choice is one llama.cpp ranks (nearly) first.
    EXPECT_GE(g.logits[static_cast<size_t>(top1)], g.top_logits[0] - near_tie) << g.name;
    if (g.top_logits[0] - g.top_logits[1] >= near_tie) {
      EXPECT_EQ(top1, g.top_ids[0]) << g.name;
    }
    EXPECT_GE(cos, triage::cpu::has_avx2() ? 0.999 : 0.995) << g.name;
    EXPECT_LT(kl, 0.02) << g.name;
    if (g.tokens.size() == 1) {
      EXPECT_LT(all_diff, 0.02) << g.name;  // F16 storage: |logit| < 32 -> step <= 1/64
    }
    cos_sum += cos;
  }
  EXPECT_GE(cos_sum / static_cast<double>(golden.size()), 0.999);
}

// Free-running greedy decoding (KV cache) must reproduce llama.cpp's
// continuation at least up to its first near-tie; teacher-forced on
// llama.cpp's continuation, every step's choice must be one llama.cpp ranks
// within near_tie of its best.
TEST_F(model_smollm2, greedy_continuation_matches_llama_cpp) {
  int checked = 0;
  for (const auto& g : golden) {
    if (g.greedy.empty()) continue;
    ASSERT_EQ(g.step_ids.size(), g.greedy.size());
    const auto ids = instance->generate_greedy(g.tokens, static_cast<int>(g.greedy.size()));
    size_t same = 0;
    while (same < ids.size() && ids[same] == g.greedy[same]) ++same;
    size_t first_tie = 0;
    while (first_tie < g.greedy.size() &&
           g.step_logits[first_tie][0] - g.step_logits[first_tie][1] >= near_tie) {
      ++first_tie;
    }
    std::printf("%-8s greedy: %zu of %zu tokens identical (llama.cpp's first near-tie at step %zu)\n",
                g.name.c_str(), same, g.greedy.size(), first_tie);
    EXPECT_GE(same, first_tie) << g.name;

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
      // A different choice must be among llama.cpp's top 5, within near_tie.
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

// llama.cpp's embeddings (pooling LAST and MEAN of the final-norm output).
TEST_F(model_smollm2, pooled_states_match_llama_cpp) {
  int checked = 0;
  for (const auto& g : golden) {
    if (g.pooled_last.empty()) continue;
    const std::vector<std::vector<int32_t>> seqs{g.tokens};
    auto out = instance->forward(seqs, {.pool = pooling::both});
    const double cl = cosine(out.last_of(0), g.pooled_last);
    const double cm = cosine(out.mean_of(0), g.pooled_mean);
    std::printf("%-8s pooled last: cosine %.6f max|diff| %.4f   mean: cosine %.6f max|diff| %.4f\n",
                g.name.c_str(), cl, max_abs_diff(out.last_of(0), g.pooled_last), cm,
                max_abs_diff(out.mean_of(0), g.pooled_mean));
    EXPECT_GE(cl, 0.999) << g.name;
    EXPECT_GE(cm, 0.999) << g.name;
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

// Rows of a batch never mix: each sequence's numbers are the same whether it
// runs alone or among others of different lengths (bit for bit, as every
// kernel computes each row with the same operations in the same order).
TEST_F(model_smollm2, ragged_batch_equals_sequences_alone) {
  std::vector<std::vector<int32_t>> seqs;
  for (const auto& g : golden) {
    if (g.tokens.size() < 100) seqs.push_back(g.tokens);  // the long one only costs time
  }
  seqs.push_back({1, 2, 3});
  seqs.push_back(golden[2].tokens);  // a duplicate
  const auto t0 = std::chrono::steady_clock::now();
  auto batch = instance->forward(seqs, {.pool = pooling::both, .want_logits = true});
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  double worst_state = 0, worst_logit = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const std::vector<std::vector<int32_t>> one{seqs[s]};
    auto alone = instance->forward(one, {.pool = pooling::both, .want_logits = true});
    worst_state = std::max({worst_state, max_abs_diff(batch.last_of(static_cast<int64_t>(s)), alone.last_of(0)),
                            max_abs_diff(batch.mean_of(static_cast<int64_t>(s)), alone.mean_of(0))});
    worst_logit = std::max(worst_logit, max_abs_diff(batch.logits_of(static_cast<int64_t>(s)), alone.logits_of(0)));
  }
  std::printf("batch of %zu sequences (%.0f ms): max|diff| vs alone: states %.3g, logits %.3g\n",
              seqs.size(), ms, worst_state, worst_logit);
  EXPECT_LE(worst_state, 1e-6);
  EXPECT_LE(worst_logit, 1e-5);
  // Micro-batches (a token budget smaller than the batch) give the same.
  auto small = model::load(model_path().string(), {.threads = 2, .max_batch_tokens = 50});
  ASSERT_TRUE(small) << small.error().what();
  auto split = small.value().forward(seqs, {.pool = pooling::last});
  EXPECT_LE(max_abs_diff(split.last, batch.last), 1e-6);
}

// Causality makes pooling checkable: the last-token state of each prefix is
// that token's state in the full sequence, so mean pooling equals the mean of
// the prefixes' last-token states; the two poolings differ for more than one
// token and coincide for one.
TEST_F(model_smollm2, mean_and_last_pooling) {
  const std::vector<int32_t> seq(golden[2].tokens.begin(), golden[2].tokens.begin() + 8);
  std::vector<std::vector<int32_t>> prefixes;
  for (size_t n = 1; n <= seq.size(); ++n) prefixes.emplace_back(seq.begin(), seq.begin() + static_cast<long>(n));
  auto pre = instance->forward(prefixes, {.pool = pooling::last});
  const std::vector<std::vector<int32_t>> full{seq};
  auto out = instance->forward(full, {.pool = pooling::both});
  const int dim = out.dim;
  std::vector<float> mean(static_cast<size_t>(dim), 0.0f);
  for (size_t n = 0; n < prefixes.size(); ++n) {
    for (int d = 0; d < dim; ++d) mean[static_cast<size_t>(d)] += pre.last[n * dim + d] / static_cast<float>(seq.size());
  }
  EXPECT_LE(max_abs_diff(out.mean_of(0), mean), 1e-4);
  EXPECT_LE(max_abs_diff(out.last_of(0), pre.last_of(static_cast<int64_t>(seq.size()) - 1)), 1e-6);
  EXPECT_LT(cosine(out.mean_of(0), out.last_of(0)), 0.99);  // they do differ
  auto one = instance->forward(std::vector<std::vector<int32_t>>{{seq[0]}}, {.pool = pooling::both});
  EXPECT_LE(max_abs_diff(one.mean_of(0), one.last_of(0)), 1e-6);
}

// layer = n_layers is the residual stream the final norm reads; an earlier
// layer stops early and gives a different state.
TEST_F(model_smollm2, layer_selection) {
  const std::vector<std::vector<int32_t>> seqs{golden[3].tokens};
  const int n_layers = instance->cfg().n_layers;
  auto final_norm = instance->forward(seqs, {.layer = -1});
  auto residual = instance->forward(seqs, {.layer = n_layers});
  auto middle = instance->forward(seqs, {.layer = n_layers / 2});
  auto embed = instance->forward(seqs, {.layer = 0});
  // rmsnorm(residual) * output_norm == final_norm
  const auto w = instance->gguf().find_tensor("output_norm.weight");
  ASSERT_TRUE(w);
  const float* gamma = reinterpret_cast<const float*>(w.value().data.data());
  double ss = 0;
  for (float v : residual.last) ss += static_cast<double>(v * v);
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / residual.dim) + instance->cfg().rms_eps);
  std::vector<float> normed(residual.last.size());
  for (size_t d = 0; d < normed.size(); ++d) normed[d] = residual.last[d] * scale * gamma[d];
  EXPECT_LE(max_abs_diff(normed, final_norm.last), 1e-4);
  EXPECT_LT(cosine(middle.last, residual.last), 0.99);
  EXPECT_LT(cosine(embed.last, middle.last), 0.99);
  EXPECT_THROW(instance->forward(seqs, {.layer = n_layers + 1}), std::invalid_argument);
  EXPECT_THROW(instance->forward(seqs, {.layer = 3, .want_logits = true}), std::invalid_argument);
  EXPECT_THROW(instance->forward(std::vector<std::vector<int32_t>>{{}}), std::invalid_argument);
  EXPECT_THROW(instance->forward(std::vector<std::vector<int32_t>>{{49152}}), std::invalid_argument);
}

TEST_F(model_smollm2, all_logits_agree_with_last_token_logits) {
  const std::vector<std::vector<int32_t>> seqs{golden[1].tokens, golden[0].tokens};
  auto out = instance->forward(seqs, {.want_logits = true, .all_logits = true});
  ASSERT_EQ(out.offsets.size(), 3u);
  const int64_t v = out.vocab;
  for (int64_t s = 0; s < 2; ++s) {
    const int64_t row = out.offsets[s + 1] - 1;
    std::span<const float> from_all(out.all_logits.data() + row * v, static_cast<size_t>(v));
    EXPECT_LE(max_abs_diff(from_all, out.logits_of(s)), 1e-6);
  }
}

}  // namespace
