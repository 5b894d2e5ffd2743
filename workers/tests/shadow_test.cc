// Shadow mode without the model: a stand-in backend gives each ticket a live
// and a candidate verdict. Routing is the same with and without the
// candidate; its agreement counters are what the two verdicts say; a
// correction updates its accuracy beside the live one; the changelog
// reproduces it; a candidate for another taxonomy or base model is refused;
// the topology's shadow section; the changelog cleanup.policy check.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "compute/classifier/adapter.h"
#include "state/report.h"
#include "state/updater.h"
#include "topology/config.h"
#include "workers/processor.h"
#include "workers/shadow.h"
#include "workers/topics.h"
#include "workers/worker.h"

namespace triage::workers {
namespace {

constexpr int64_t nov_2026 = 1795491400000LL;  // 2026-11-24T03:36:40Z
constexpr float candidate_threshold = 0.7f;

// Body: "<live category> <live confidence> <candidate category> <candidate confidence>".
class stand_in_backend final : public backend {
 public:
  explicit stand_in_backend(bool shadow) : shadow_(shadow) {}
  std::string name() const override { return "stand-in"; }
  std::string model_version() const override { return "m1"; }
  std::string adapter_version() const override { return "a1"; }
  float threshold() const override { return 0.8f; }
  int estimate_tokens(const v1::TicketEvent&) const override { return 1; }
  std::vector<decision> classify(std::span<const v1::TicketEvent* const> tickets) override {
    std::vector<decision> out;
    for (const auto* t : tickets) {
      char cat[64] = {}, cand[64] = {};
      float conf = 0, cand_conf = 0;
      EXPECT_EQ(std::sscanf(t->body().c_str(), "%63s %f %63s %f", cat, &conf, cand, &cand_conf), 4) << t->body();
      decision d;
      d.category = cat;
      d.confidence = conf;
      d.urgency = 2;
      d.prompt_tokens = 10;
      if (shadow_) {
        d.shadow = shadow_decision{.category = cand, .urgency = 1, .confidence = cand_conf, .threshold = candidate_threshold};
      }
      out.push_back(d);
    }
    return out;
  }

 private:
  bool shadow_;
};

struct ticket_spec {
  std::string id, live;
  float live_conf;
  std::string cand;
  float cand_conf;
};

const std::vector<ticket_spec> tickets = {
    {"T-1", "cards", 0.95f, "cards", 0.90f},        // same category, both route
    {"T-2", "cards", 0.90f, "payments", 0.75f},     // other category, both route
    {"T-3", "payments", 0.50f, "payments", 0.72f},  // same category; live escalates, candidate routes
    {"T-4", "payments", 0.85f, "payments", 0.60f},  // same category; live routes, candidate escalates
    {"T-5", "cards", 0.99f, "disputes", 0.99f},     // candidate's category always escalates
    {"T-6", "disputes", 0.99f, "disputes", 0.99f},  // both escalate (always_escalate)
    {"T-7", "cards", 0.30f, "payments", 0.40f},     // both escalate, other category
};

std::vector<input_record> records() {
  std::vector<input_record> out;
  for (size_t i = 0; i < tickets.size(); ++i) {
    const auto& t = tickets[i];
    v1::TicketEvent e;
    e.set_id(t.id);
    e.set_body(t.live + " " + std::to_string(t.live_conf) + " " + t.cand + " " + std::to_string(t.cand_conf));
    out.push_back({"tickets", static_cast<int32_t>(i % 2), static_cast<int64_t>(i), t.id, e.SerializeAsString(),
                   nov_2026 + static_cast<int64_t>(i)});
  }
  return out;
}

// The output with the wall-clock fields (routed_at, escalated_at, latency) cleared.
std::string without_clock(const output_record& o) {
  if (o.kind == outcome::routed) {
    v1::RoutedTicket rt;
    EXPECT_TRUE(rt.ParseFromString(o.value));
    rt.clear_routed_at();
    rt.mutable_result()->clear_latency();
    return rt.SerializeAsString();
  }
  v1::Escalation e;
  EXPECT_TRUE(e.ParseFromString(o.value));
  e.clear_escalated_at();
  e.mutable_draft()->clear_latency();
  return e.SerializeAsString();
}

TEST(shadow, routing_outputs_are_the_same_with_and_without_a_candidate) {
  topology::config cfg;  // min_confidence: the adapter's (0.8); always_escalate: disputes
  stand_in_backend live_only(false), with_candidate(true);
  processor a(cfg, live_only), b(cfg, with_candidate);
  const auto in = records();
  const auto x = a.process(in);
  const auto y = b.process(in);
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(x[i].topic, y[i].topic) << i;
    EXPECT_EQ(x[i].key, y[i].key) << i;
    EXPECT_EQ(x[i].kind, y[i].kind) << i;
    EXPECT_EQ(x[i].category, y[i].category) << i;
    EXPECT_EQ(x[i].reason, y[i].reason) << i;
    EXPECT_EQ(without_clock(x[i]), without_clock(y[i])) << i;
    EXPECT_FALSE(x[i].has_shadow);
    EXPECT_TRUE(y[i].has_shadow);
    EXPECT_EQ(y[i].shadow_category, tickets[i].cand);
  }
  // The live routing the specs describe (not the candidate's).
  EXPECT_EQ(y[2].kind, outcome::escalated);
  EXPECT_EQ(y[3].kind, outcome::routed);
  EXPECT_EQ(y[4].kind, outcome::routed);
  EXPECT_EQ(y[4].topic, "tickets.routed.cards");
}

TEST(shadow, candidate_escalation_follows_the_policy_at_its_own_or_the_configured_threshold) {
  topology::config cfg;
  stand_in_backend b(true);
  processor p(cfg, b);
  EXPECT_TRUE(p.shadow_escalation_reasons({.category = "cards", .confidence = 0.69f, .threshold = 0.7f}).size() == 1);
  EXPECT_TRUE(p.shadow_escalation_reasons({.category = "cards", .confidence = 0.71f, .threshold = 0.7f}).empty());
  EXPECT_FALSE(p.shadow_escalation_reasons({.category = "disputes", .confidence = 1, .threshold = 0.7f}).empty());
  EXPECT_FALSE(p.shadow_escalation_reasons({.category = "cards", .confidence = 1, .out_of_scope = true}).empty());
  cfg.routing.min_confidence = 0.9;  // a configured threshold applies to both
  processor q(cfg, b);
  EXPECT_FALSE(q.shadow_escalation_reasons({.category = "cards", .confidence = 0.85f, .threshold = 0.7f}).empty());
}

struct shadow_state_test : ::testing::Test {
  void SetUp() override {
    base = std::filesystem::temp_directory_path() / ("triage-shadow-" + std::to_string(std::random_device{}()));
    auto s = state::store::open((base / "a").string());
    ASSERT_TRUE(s) << s.error().message;
    db = std::move(s.value());
  }
  void TearDown() override {
    db.reset();
    std::filesystem::remove_all(base);
  }
  std::filesystem::path base;
  std::unique_ptr<state::store> db;
};

TEST_F(shadow_state_test, agreement_counters_equal_what_the_two_verdicts_say_and_corrections_score_both) {
  topology::config cfg;
  stand_in_backend b(true);
  processor p(cfg, b);
  const auto in = records();
  const auto out = p.process(in);
  const auto facts = state_facts(in, out, false);
  state::updater u(*db, {});
  auto up = u.prepare(facts, {{0, 7}, {1, 7}});
  ASSERT_TRUE(up) << up.error().message;
  ASSERT_TRUE(u.apply(up.value()));

  // Expected, from the specs: per (partition, live category) [shadowed,
  // same category, same route, candidate escalated, live escalated].
  std::map<std::string, state::counts> want;
  for (size_t i = 0; i < tickets.size(); ++i) {
    const auto& t = tickets[i];
    const bool live_esc = t.live == "disputes" || t.live_conf < 0.8f;
    const bool cand_esc = t.cand == "disputes" || t.cand_conf < candidate_threshold;
    auto& c = want[state::partition_prefix(static_cast<int32_t>(i % 2)) + "2026Q4|" + t.live + "|shadow"];
    c.resize(5);
    c[0] += 1;
    c[1] += t.cand == t.live;
    c[2] += live_esc == cand_esc;
    c[3] += cand_esc;
    c[4] += live_esc;
  }
  std::map<std::string, state::counts> got;
  ASSERT_TRUE(db->scan(state::family::accuracy, "", [&](std::string_view k, std::string_view v) {
    if (k.ends_with("|shadow")) got[std::string(k)] = state::decode_counts(v).value();
    return true;
  }));
  EXPECT_EQ(got, want);

  // The changelog carries them, so a restore reproduces them.
  std::map<std::string, std::string> logged;
  for (const auto& r : up.value().changelog) {
    if (r.key.starts_with("accuracy/")) logged[r.key.substr(9)] = *r.value;
  }
  ASSERT_EQ(logged.size(), want.size());
  for (const auto& [k, v] : want) EXPECT_EQ(state::decode_counts(logged.at(k)).value(), v) << k;

  // The decision keeps the candidate's category.
  auto dv = db->get(state::family::decisions, "00001|T-2");
  ASSERT_TRUE(dv && dv.value());
  auto dec = state::decode_decision(*dv.value());
  ASSERT_TRUE(dec) << dec.error().message;
  EXPECT_EQ(dec.value().category, "cards");
  EXPECT_EQ(dec.value().shadow_category, "payments");

  // Corrections: T-2 is payments (candidate right, live wrong); T-1 cards
  // (both right); T-7 cards (live right, candidate wrong).
  auto correct = [&](const std::string& id, const std::string& cat) {
    v1::Correction c;
    c.set_ticket_id(id);
    c.set_category(cat);
    state::write_set w;
    auto j = state::join_correction(*db, c, w);
    ASSERT_TRUE(j && j.value()) << id;
    ASSERT_TRUE(db->write(w));
  };
  correct("T-2", "payments");
  correct("T-1", "cards");
  correct("T-7", "cards");
  // T-1 (partition 0) and T-7 (partition 0) are live "cards"; T-2 (partition 1).
  EXPECT_EQ(db->get_counts(state::family::accuracy, "00000|2026Q4|cards").value(), (state::counts{2, 2, 2, 1, 2}));
  EXPECT_EQ(db->get_counts(state::family::accuracy, "00001|2026Q4|cards").value(), (state::counts{1, 0, 1, 1, 0}));

  auto s = state::summarize(*db, std::string("2026Q4"));
  ASSERT_TRUE(s) << s.error().message;
  bool saw = false;
  for (const auto& c : s.value().categories) {
    if (c.category != "cards") continue;
    saw = true;
    EXPECT_EQ(c.shadow_decisions, 4);      // T-1, T-2, T-5, T-7
    EXPECT_EQ(c.shadow_same_category, 1);  // T-1
    EXPECT_EQ(c.shadow_corrections, 3);
    EXPECT_EQ(c.shadow_agreed, 2);         // T-1, T-2
    EXPECT_EQ(c.shadow_live_agreed, 2);    // T-1, T-7
    EXPECT_EQ(c.corrections, 3);
    EXPECT_DOUBLE_EQ(c.shadow_accuracy(), 2.0 / 3.0);
  }
  EXPECT_TRUE(saw);
  const auto j = state::to_json(s.value());
  bool json_has = false;
  for (const auto& row : j["categories"]) {
    if (row["category"] == "cards") {
      json_has = true;
      EXPECT_EQ(row["shadow"]["decisions"], 4);
      EXPECT_DOUBLE_EQ(row["shadow"]["category_agreement"].get<double>(), 0.25);
      EXPECT_DOUBLE_EQ(row["shadow"]["accuracy"].get<double>(), 2.0 / 3.0);
    }
  }
  EXPECT_TRUE(json_has);
  const auto table = state::to_table(s.value());
  EXPECT_NE(table.find("shadow adapter beside the live one"), std::string::npos) << table;
}

TEST_F(shadow_state_test, without_a_candidate_nothing_shadow_is_written_and_old_decisions_still_read) {
  topology::config cfg;
  stand_in_backend b(false);
  processor p(cfg, b);
  const auto in = records();
  const auto out = p.process(in);
  state::updater u(*db, {});
  auto up = u.prepare(state_facts(in, out, false), {{0, 7}, {1, 7}});
  ASSERT_TRUE(up);
  for (const auto& r : up.value().changelog) EXPECT_FALSE(r.key.ends_with("|shadow")) << r.key;
  auto dec = state::decode_decision("2026Q4\tcards\t2\t0.9000\trouted");
  ASSERT_TRUE(dec);
  EXPECT_TRUE(dec.value().shadow_category.empty());
  // Text and candidate together; text without candidate keeps 6 fields.
  const state::decision_record both{"2026Q4", "cards", 2, 0.9f, "routed", "hello", "payments"};
  auto back = state::decode_decision(state::encode_decision(both));
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value().text, "hello");
  EXPECT_EQ(back.value().shadow_category, "payments");
  const state::decision_record no_text{"2026Q4", "cards", 2, 0.9f, "routed", "", "payments"};
  back = state::decode_decision(state::encode_decision(no_text));
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value().text, "");
  EXPECT_EQ(back.value().shadow_category, "payments");
  const auto six = state::encode_decision({"2026Q4", "cards", 2, 0.9f, "routed", "hi", ""});
  EXPECT_EQ(std::count(six.begin(), six.end(), '\t'), 5) << six;
}

std::string source_file(const std::string& rel) {
  const char* src = std::getenv("TRIAGE_SOURCE_DIR");
  return (std::filesystem::path(src != nullptr ? src : ".") / rel).string();
}

TEST(shadow, a_candidate_for_another_taxonomy_or_base_model_is_refused_naming_the_file) {
  const auto live_path = source_file("topology/adapters/banking.gguf");
  auto live = classifier::load_adapter(live_path);
  ASSERT_TRUE(live) << live.error().message;

  // The retail adapter: another taxonomy.
  const auto retail = source_file("topology/adapters/retail.gguf");
  auto r = load_shadow_adapter(retail, live.value(), live_path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, classifier::errc::adapter_mismatch);
  EXPECT_NE(r.error().message.find(retail), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("taxonomy"), std::string::npos) << r.error().message;

  // A copy of the live adapter that claims another base model.
  auto other = live.value();
  other.base_fingerprint = std::string(64, '0');
  other.base_model_name = "some-other-model";
  auto ok = check_shadow(other, "cand.gguf", live.value(), live_path);
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.error().message.find("cand.gguf"), std::string::npos) << ok.error().message;
  EXPECT_NE(ok.error().message.find("some-other-model"), std::string::npos) << ok.error().message;

  // A missing file.
  auto missing = load_shadow_adapter("/nonexistent/cand.gguf", live.value(), live_path);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/cand.gguf"), std::string::npos);

  // The live adapter itself stands beside itself, on the same features; a
  // longer token budget needs its own extraction.
  auto same = load_shadow_adapter(live_path, live.value(), live_path);
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_TRUE(same_features(live.value(), same.value()));
  same.value().max_tokens += 64;
  EXPECT_FALSE(same_features(live.value(), same.value()));
}

TEST(shadow, the_topology_names_the_candidate) {
  auto c = topology::parse_config("shadow:\n  adapter: topology/adapters/banking.candidate.gguf\n", "t.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c.value().shadow.adapter, "topology/adapters/banking.candidate.gguf");
  auto none = topology::parse_config("mode: head\n", "t.yaml");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none.value().shadow.adapter.empty());
  auto bad = topology::parse_config("shadow:\n  adaptor: x.gguf\n", "t.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("shadow.adaptor"), std::string::npos) << bad.error().message;
}

TEST(changelog_policy, only_compact_is_accepted_and_the_error_names_topic_and_policy) {
  topology::config cfg;
  EXPECT_TRUE(check_changelog_policy(cfg, "tickets.state-changelog", "compact"));
  for (const std::string policy : {"delete", "compact,delete"}) {
    auto r = check_changelog_policy(cfg, "tickets.state-changelog", policy);
    ASSERT_FALSE(r) << policy;
    EXPECT_NE(r.error().message.find("'tickets.state-changelog'"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("cleanup.policy=" + policy), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("--add-config cleanup.policy=compact"), std::string::npos);
  }
}

}  // namespace
}  // namespace triage::workers
