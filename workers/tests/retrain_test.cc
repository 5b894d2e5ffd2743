// `triage retrain` without the model: features come from a stand-in that
// places each text near a point chosen by its first word, so a "class" of
// tickets is a word, and relabelling that word's tickets is what the
// corrections teach.
#include "workers/retrain_cmds.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compute/classifier/adapter.h"
#include "compute/classifier/dataset.h"
#include "compute/classifier/head.h"
#include "compute/classifier/taxonomy.h"
#include "state/store.h"
#include "workers/training.h"

namespace triage::workers {
namespace {

namespace cl = triage::classifier;
namespace fs = std::filesystem;

constexpr size_t dim = 16;
constexpr const char* fingerprint = "fake-model-fingerprint";

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

// A point per first word (spread over [-3, 3]^dim), plus noise from the whole text.
std::vector<float> fake_features(const std::vector<std::string>& texts) {
  std::vector<float> out;
  out.reserve(texts.size() * dim);
  for (const auto& t : texts) {
    cl::splitmix64 center{fnv1a(t.substr(0, t.find(' ')))}, noise{fnv1a(t)};
    for (size_t d = 0; d < dim; ++d) {
      const double c = static_cast<double>(center.below(6001)) / 1000.0 - 3.0;
      const double n = static_cast<double>(noise.below(2001)) / 1000.0 - 1.0;
      out.push_back(static_cast<float>(c + 0.3 * n));
    }
  }
  return out;
}

class retrain_cmd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("triage_retrain_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    taxonomy_ = dir_ / "taxonomy.csv";
    data_ = dir_ / "data.csv";
    current_ = dir_ / "current.gguf";
    examples_ = dir_ / "examples.jsonl";
    write(taxonomy_, "intent,category,urgency\nlost_card,cards,2\ncard_arrival,cards,1\n"
                     "refund_request,payments,1\ntransfer_failed,transfers,2\n");
    // Each intent is a word; "zeta" tickets are lost_card in the base data.
    std::string data = "text,intent\n";
    const std::vector<std::pair<std::string, std::string>> words{
        {"alpha", "lost_card"}, {"beta", "card_arrival"}, {"gamma", "refund_request"},
        {"delta", "transfer_failed"}, {"zeta", "lost_card"}};
    for (const auto& [w, intent] : words) {
      for (int i = 0; i < 60; ++i) data += w + " " + std::to_string(i) + "," + intent + "\n";
    }
    write(data_, data);
    make_current();
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

  // The adapter in service, trained on the base data as `triage train` would.
  void make_current() {
    auto tax = cl::load_taxonomy(taxonomy_.string());
    ASSERT_TRUE(tax) << tax.error().message;
    auto ex = cl::load_examples(data_.string(), tax.value());
    ASSERT_TRUE(ex) << ex.error().message;
    std::vector<std::string> texts;
    for (const auto& e : ex.value()) texts.push_back(e.text);
    const auto labels = cl::labels_of(ex.value());
    const auto f = fake_features(texts);
    const auto split = cl::stratified_split(labels);
    cl::adapter a;
    a.name = "test";
    a.intents = tax.value().intents;
    a.categories = tax.value().categories;
    a.intent_category = tax.value().intent_category;
    a.intent_urgency = tax.value().intent_urgency;
    a.taxonomy_sha256 = tax.value().sha256;
    a.base_fingerprint = fingerprint;
    a.base_model_name = "fake.gguf";
    fit_adapter(a, f, dim, labels, split.train, split.calibration, {.target_accuracy = 0.95});
    ASSERT_TRUE(cl::save_adapter(a, current_.string()));
  }

  retrain_args args() {
    retrain_args a;
    a.examples = examples_.string();
    a.quarter = "2026Q4";
    a.data = data_.string();
    a.taxonomy = taxonomy_.string();
    a.out_of_scope = "";
    a.current = current_.string();
    a.out = (dir_ / "candidate.gguf").string();
    return a;
  }

  feature_factory factory() {
    return [this]() -> result<feature_source> {
      ++factory_calls_;
      feature_source s;
      s.fingerprint = fingerprint;
      s.model_name = "fake.gguf";
      s.dim = dim;
      s.features = [](const std::vector<std::string>& texts, const cl::feature_spec&, const std::string&) {
        return fake_features(texts);
      };
      return s;
    };
  }

  // The category `adapter_path` gives `text`.
  std::string category_of(const fs::path& adapter_path, const std::string& text) {
    auto a = cl::load_adapter(adapter_path.string());
    EXPECT_TRUE(a) << a.error().message;
    if (!a) return "";
    const auto p = predict(a.value(), fake_features({text}), {0});
    return a.value().categories[static_cast<size_t>(p[0].category)];
  }

  std::string corrected_line(const std::string& id, const std::string& label, const std::string& text,
                             const std::string& quarter = "2026Q4") {
    std::string line = R"({"ticket_id":")" + id + R"(","quarter":")" + quarter +
                       R"(","category":"cards","source":"corrected","label":")" + label + "\"";
    if (!text.empty()) line += R"(,"text":")" + text + "\"";
    return line + "}\n";
  }

  fs::path dir_, taxonomy_, data_, current_, examples_;
  int factory_calls_ = 0;
};

TEST_F(retrain_cmd, corrections_relabel_a_class_and_the_candidate_learns_it) {
  ASSERT_EQ(category_of(current_, "zeta 99999"), "cards");
  std::string jsonl;
  // Agents say zeta tickets are transfers (one intent: the label names it).
  for (int i = 0; i < 40; ++i) jsonl += corrected_line("z" + std::to_string(i), "transfers", "zeta " + std::to_string(1000 + i));
  // A category of two intents: resolved by the current adapter (beta -> card_arrival).
  for (int i = 0; i < 5; ++i) jsonl += corrected_line("b" + std::to_string(i), "cards", "beta " + std::to_string(2000 + i));
  // Corrected but no text kept: counted, not used.
  for (int i = 0; i < 3; ++i) jsonl += corrected_line("n" + std::to_string(i), "transfers", "");
  // No agent label; another quarter.
  jsonl += R"({"ticket_id":"e1","quarter":"2026Q4","category":"cards","source":"escalated","label":"","text":"zeta 5"})" "\n";
  jsonl += R"({"ticket_id":"e2","quarter":"2026Q4","category":"cards","source":"low_confidence","label":""})" "\n";
  jsonl += corrected_line("old", "payments", "zeta 3000", "2026Q3");
  write(examples_, jsonl);

  auto a = args();
  a.corrected_weight = 3;
  auto r = triage::workers::retrain(a, factory());
  ASSERT_TRUE(r) << r.error().message;
  const auto& rep = r.value().report;
  const auto& ex = rep["examples"];
  EXPECT_EQ(ex["lines"].get<size_t>(), 51u);
  EXPECT_EQ(ex["other_quarter"].get<size_t>(), 1u);
  EXPECT_EQ(ex["without_agent_label"].get<size_t>(), 2u);
  EXPECT_EQ(ex["corrected"].get<size_t>(), 48u);
  EXPECT_EQ(ex["corrected_without_text"].get<size_t>(), 3u);
  EXPECT_EQ(ex["corrected_usable"].get<size_t>(), 45u);
  EXPECT_EQ(ex["category_only_labels"].get<size_t>(), 5u);
  EXPECT_EQ(ex["corrected_test"].get<size_t>() + ex["corrected_train"].get<size_t>(), 45u);
  EXPECT_GT(ex["corrected_test"].get<size_t>(), 5u);

  // The candidate routes zeta tickets to transfers; the current one did not.
  EXPECT_EQ(category_of(a.out, "zeta 99999"), "transfers");
  EXPECT_EQ(category_of(current_, "zeta 99999"), "cards");
  EXPECT_EQ(category_of(a.out, "beta 99999"), "cards");
  const double cur = rep["current"]["corrected_test"]["category_accuracy"].get<double>();
  const double cand = rep["candidate"]["corrected_test"]["category_accuracy"].get<double>();
  EXPECT_GT(cand, 0.9);
  EXPECT_LT(cur, 0.5);
  // Same held-out base rows for both.
  EXPECT_EQ(rep["current"]["test"]["n"], rep["candidate"]["test"]["n"]);
  EXPECT_GT(rep["current"]["test"]["n"].get<size_t>(), 0u);
  // The report file and the table.
  std::ifstream rf(a.out + ".report.json");
  EXPECT_TRUE(rf.good());
  EXPECT_NE(r.value().table.find("held-out corrected examples"), std::string::npos);
  // The candidate keeps the current adapter's identity checks.
  auto c = cl::load_adapter(a.out);
  ASSERT_TRUE(c);
  auto cur_a = cl::load_adapter(current_.string());
  ASSERT_TRUE(cur_a);
  EXPECT_EQ(c.value().taxonomy_sha256, cur_a.value().taxonomy_sha256);
  EXPECT_EQ(c.value().base_fingerprint, fingerprint);
  EXPECT_EQ(c.value().name, "test-2026Q4");
}

TEST_F(retrain_cmd, same_inputs_and_seed_give_the_same_candidate) {
  std::string jsonl;
  for (int i = 0; i < 20; ++i) jsonl += corrected_line("z" + std::to_string(i), "transfers", "zeta " + std::to_string(1000 + i));
  write(examples_, jsonl);
  auto a = args();
  ASSERT_TRUE(triage::workers::retrain(a, factory()));
  std::ifstream f1(a.out, std::ios::binary);
  const std::string first((std::istreambuf_iterator<char>(f1)), {});
  a.out = (dir_ / "again.gguf").string();
  ASSERT_TRUE(triage::workers::retrain(a, factory()));
  std::ifstream f2(a.out, std::ios::binary);
  const std::string second((std::istreambuf_iterator<char>(f2)), {});
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(first, second);
}

TEST_F(retrain_cmd, bad_examples_name_the_file_and_line) {
  const std::string good = corrected_line("z1", "transfers", "zeta 1");
  write(examples_, good + good + "{\"ticket_id\": \"broken\"\n");
  auto r = triage::workers::retrain(args(), factory());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, cl::errc::bad_dataset);
  EXPECT_NE(r.error().message.find(examples_.string() + ":3: not a JSON object"), std::string::npos)
      << r.error().message;

  write(examples_, good + corrected_line("z2", "loans", "zeta 2"));
  r = triage::workers::retrain(args(), factory());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(examples_.string() + ":2: label 'loans' is not a category"), std::string::npos)
      << r.error().message;

  write(examples_, R"({"ticket_id":"x","quarter":"2026Q4","source":"corrected","label":"cards","label_intent":"refund_request","text":"a"})" "\n");
  r = triage::workers::retrain(args(), factory());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(":1: label 'cards' disagrees with label_intent 'refund_request'"), std::string::npos)
      << r.error().message;

  write(examples_, R"({"ticket_id":"x","quarter":"2026Q4","source":"corrected","label":"cards","text":7})" "\n");
  r = triage::workers::retrain(args(), factory());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(":1: 'text' must be a string"), std::string::npos) << r.error().message;
  EXPECT_EQ(factory_calls_, 0) << "the model must not load for bad input";
}

TEST_F(retrain_cmd, examples_without_text_are_counted_and_refused) {
  write(examples_, corrected_line("n1", "transfers", "") + corrected_line("n2", "cards", ""));
  auto r = triage::workers::retrain(args(), factory());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("2 corrected, 2 of them without text"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("keep_ticket_text"), std::string::npos);
  EXPECT_EQ(factory_calls_, 0);
}

TEST_F(retrain_cmd, a_taxonomy_the_adapter_was_not_trained_for_fails_clearly) {
  write(examples_, corrected_line("z1", "transfers", "zeta 1"));
  const auto other = dir_ / "other_taxonomy.csv";
  write(other, "intent,category,urgency\nlost_card,cards,2\ncard_arrival,cards,1\n"
               "refund_request,payments,1\ntransfer_failed,transfers,2\nloan_query,loans,1\n");
  auto a = args();
  a.taxonomy = other.string();
  auto r = triage::workers::retrain(a, factory());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, cl::errc::adapter_mismatch);
  EXPECT_NE(r.error().message.find(current_.string()), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("was trained for taxonomy"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(other.string()), std::string::npos) << r.error().message;
  EXPECT_EQ(factory_calls_, 0);
  EXPECT_FALSE(fs::exists(a.out));
}

TEST_F(retrain_cmd, another_base_model_fails_clearly) {
  write(examples_, corrected_line("z1", "transfers", "zeta 1"));
  auto f = [this]() -> result<feature_source> {
    auto s = factory()();
    if (s) s.value().fingerprint = "another-model";
    return s;
  };
  auto r = triage::workers::retrain(args(), f);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, cl::errc::adapter_mismatch);
  EXPECT_NE(r.error().message.find("not on fake.gguf"), std::string::npos) << r.error().message;
}

TEST_F(retrain_cmd, examples_come_from_a_state_store_by_quarter) {
  const auto store_dir = dir_ / "state";
  {
    auto s = state::store::open(store_dir.string());
    ASSERT_TRUE(s) << s.error().message;
    state::write_set w;
    for (int i = 0; i < 30; ++i) {
      const std::string id = "z" + std::to_string(i);
      const std::string line = corrected_line(id, "transfers", "zeta " + std::to_string(1000 + i));
      w.put(state::family::examples, state::partition_prefix(i % 2) + "2026Q4|" + id, line.substr(0, line.size() - 1));
    }
    const std::string old = corrected_line("old", "payments", "zeta 7", "2026Q3");
    w.put(state::family::examples, state::partition_prefix(0) + "2026Q3|old", old.substr(0, old.size() - 1));
    ASSERT_TRUE(s.value()->write(w));
  }
  auto a = args();
  a.examples.clear();
  a.state = store_dir.string();
  a.corrected_weight = 3;
  auto r = triage::workers::retrain(a, factory());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().report["examples"]["corrected_usable"].get<size_t>(), 30u);
  EXPECT_EQ(category_of(a.out, "zeta 99999"), "transfers");

  a.quarter.clear();
  r = triage::workers::retrain(a, factory());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("--state needs --quarter"), std::string::npos);
}

}  // namespace
}  // namespace triage::workers
