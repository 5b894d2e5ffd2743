// Shadow mode on the real model: a candidate adapter (the banking adapter
// with its output biases and temperature changed, saved as a new file)
// beside the live banking adapter. The live decisions are the same with and
// without it; each shadow verdict is what an engine loaded with the
// candidate as its only adapter decides, whether its head runs on the live
// features or (another token budget) on a second extraction; an adapter of
// another taxonomy is refused.
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compute/classifier/adapter.h"
#include "compute/classifier/engine.h"
#include "compute/tests/test_files.h"
#include "workers/slm_backend.h"

namespace triage::workers {
namespace {

std::string source_file(const std::string& rel) {
  const char* src = std::getenv("TRIAGE_SOURCE_DIR");
  return (std::filesystem::path(src != nullptr ? src : ".") / rel).string();
}

const std::vector<std::string> texts = {
    "My card payment was declined twice, why?",
    "I was charged twice for the same purchase at a shop",
    "How do I top up my account with a bank transfer?",
    "The exchange rate you gave me for euros looks wrong",
    "I lost my card yesterday, please freeze it",
    "Where is the PIN for my new card?",
    "A payment I do not recognise appeared on my statement",
    "Can I get a refund for an item I returned?",
};

struct shadow_slm_test : ::testing::Test {
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(test_files::model_path()))
        << test_files::model_path() << " is missing: run ops/setup.sh (CI does)";
    dir = std::filesystem::temp_directory_path() / ("triage-shadow-slm-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  // The live adapter with other output biases (favouring every 3rd intent)
  // and temperature, and `extra_tokens` more token budget.
  std::string candidate(const std::string& name, int extra_tokens) {
    auto a = classifier::load_adapter(live_path);
    EXPECT_TRUE(a) << a.error().message;
    auto& h = a.value().intent_head;
    auto b2 = h.b2();
    for (size_t i = 0; i < b2.size(); i += 3) b2[i] += 1.5f;
    h = classifier::head(h.dim(), h.hidden(), h.n_classes(), h.mean(), h.inv_std(), h.w1(), h.b1(), h.w2(), b2);
    a.value().temperature *= 1.7f;
    a.value().threshold = 0.5f;
    a.value().max_tokens += extra_tokens;
    a.value().name = name;
    const auto path = (dir / (name + ".gguf")).string();
    auto ok = classifier::save_adapter(a.value(), path);
    EXPECT_TRUE(ok) << ok.error().message;
    return path;
  }

  std::vector<v1::TicketEvent> events() const {
    std::vector<v1::TicketEvent> out;
    for (size_t i = 0; i < texts.size(); ++i) {
      v1::TicketEvent e;
      e.set_id("T-" + std::to_string(i));
      e.set_body(texts[i]);
      out.push_back(e);
    }
    return out;
  }

  std::filesystem::path dir;
  const std::string live_path = source_file("topology/adapters/banking.gguf");
};

TEST_F(shadow_slm_test, candidate_verdicts_equal_its_own_engine_and_live_decisions_do_not_change) {
  const std::string model = test_files::model_path().string();
  const auto same = candidate("cand-same", 0);
  const auto longer = candidate("cand-longer", 64);
  const auto ev = events();
  std::vector<const v1::TicketEvent*> batch;
  for (const auto& e : ev) batch.push_back(&e);

  auto plain = slm_backend::load({.model = model, .adapter = live_path, .threads = 2});
  ASSERT_TRUE(plain) << plain.error().message;
  const auto live = plain.value()->classify(batch);

  for (const auto& path : {same, longer}) {
    SCOPED_TRACE(path);
    auto b = slm_backend::load({.model = model, .adapter = live_path, .threads = 2});
    ASSERT_TRUE(b) << b.error().message;
    auto ok = b.value()->set_shadow(path);
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(b.value()->shadow_shares_features(), path == same);
    const auto d = b.value()->classify(batch);
    ASSERT_EQ(d.size(), live.size());

    auto own = classifier::engine::load({.model = model, .adapter = path, .threads = 2});
    ASSERT_TRUE(own) << own.error().message;
    const auto want = own.value().classify(texts);
    const auto& cats = own.value().adapter_info().categories;
    int differs = 0;
    for (size_t i = 0; i < d.size(); ++i) {
      // Live: untouched by the candidate.
      EXPECT_EQ(d[i].category, live[i].category) << i;
      EXPECT_FLOAT_EQ(d[i].confidence, live[i].confidence) << i;
      EXPECT_EQ(d[i].intent, live[i].intent) << i;
      // Shadow: what the candidate alone decides.
      ASSERT_TRUE(d[i].shadow.has_value()) << i;
      EXPECT_EQ(d[i].shadow->category, cats[want[i].category]) << i;
      EXPECT_NEAR(d[i].shadow->confidence, want[i].confidence, 1e-5) << i;
      EXPECT_EQ(d[i].shadow->threshold, 0.5f);
      differs += d[i].shadow->category != d[i].category ||
                 std::abs(d[i].shadow->confidence - d[i].confidence) > 1e-3f;
    }
    // The candidate is not the live adapter in disguise.
    EXPECT_GT(differs, 0);
  }
  EXPECT_FALSE(live[0].shadow.has_value());
}

TEST_F(shadow_slm_test, a_candidate_of_another_taxonomy_is_refused_at_load) {
  auto b = slm_backend::load({.model = test_files::model_path().string(), .adapter = live_path, .threads = 2});
  ASSERT_TRUE(b) << b.error().message;
  const auto retail = source_file("topology/adapters/retail.gguf");
  auto ok = b.value()->set_shadow(retail);
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.error().message.find(retail), std::string::npos) << ok.error().message;
  EXPECT_EQ(b.value()->shadow(), nullptr);
}

}  // namespace
}  // namespace triage::workers
