// The updater: what a batch of decisions does to the store and the changelog,
// that replaying the changelog reproduces the store, corrections, the
// summary and the retraining export; and the config's state section.
#include <filesystem>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "state/drift.h"
#include "state/report.h"
#include "state/updater.h"
#include "topology/config.h"

namespace triage::state {
namespace {

constexpr int64_t nov_2026 = 1795491400000LL;  // 2026-11-24T03:36:40Z
constexpr int64_t hour_ms = 3600 * 1000;

struct updater_test : ::testing::Test {
  void SetUp() override {
    base = std::filesystem::temp_directory_path() /
           ("triage-updater-" + std::to_string(std::random_device{}()));
    auto s = store::open((base / "a").string());
    ASSERT_TRUE(s) << s.error().message;
    db = std::move(s.value());
  }
  void TearDown() override {
    db.reset();
    std::filesystem::remove_all(base);
  }

  static ticket_fact fact(int32_t p, int64_t off, const std::string& id, const std::string& outcome,
                          const std::string& cat, float conf, int64_t ts = nov_2026) {
    ticket_fact f;
    f.partition = p;
    f.offset = off;
    f.timestamp_ms = ts;
    f.ticket_id = id;
    f.outcome = outcome;
    f.category = cat;
    f.urgency = 2;
    f.confidence = conf;
    f.tokens = 40;
    f.text = "card 4111 1111 1111 1111 declined, mail me at a.b@example.com";
    return f;
  }

  // Every key and value of every family, for comparing two stores.
  static std::map<std::string, std::string> dump(const store& s) {
    std::map<std::string, std::string> out;
    for (auto f : all_families) {
      auto ok = s.scan(f, "", [&](std::string_view k, std::string_view v) {
        out[std::string(family_name(f)) + "/" + std::string(k)] = std::string(v);
        return true;
      });
      EXPECT_TRUE(ok);
    }
    return out;
  }

  std::filesystem::path base;
  std::unique_ptr<store> db;
};

TEST_F(updater_test, a_batch_counts_each_ticket_once_in_every_family) {
  updater u(*db, {.baseline_tickets = 2});
  std::vector<ticket_fact> facts{
      fact(0, 10, "T-1", "routed", "cards", 0.95f),
      fact(0, 11, "T-2", "routed", "cards", 0.91f),
      fact(0, 12, "T-3", "escalated", "disputes", 0.97f),
      fact(1, 5, "", "dead_lettered", "", 0, nov_2026 + hour_ms),
      fact(1, 6, "T-5", "escalated", "cards", 0.40f, nov_2026 + hour_ms),
  };
  facts[3].urgency = 0;
  auto up = u.prepare(facts, {{0, 13}, {1, 7}});
  ASSERT_TRUE(up) << up.error().message;
  ASSERT_TRUE(u.apply(up.value()));

  EXPECT_EQ(db->get_counts(family::counters, "00000|2026Q4|cards|2|routed").value(), counts{2});
  EXPECT_EQ(db->get_counts(family::counters, "00000|2026Q4|disputes|2|escalated").value(), counts{1});
  EXPECT_EQ(db->get_counts(family::counters, "00001|2026Q4|-|0|dead_lettered").value(), counts{1});
  EXPECT_EQ(db->get_counts(family::counters, "00001|2026Q4|cards|2|escalated").value(), counts{1});
  counts cards_hist(10);
  cards_hist[9] = 2;
  EXPECT_EQ(db->get_counts(family::histograms, "00000|2026Q4|cards").value(), cards_hist);
  EXPECT_EQ(db->get_counts(family::windows, "00000|2026-11-24T03").value(), (counts{3, 1, 0}));
  EXPECT_EQ(db->get_counts(family::windows, "00001|2026-11-24T04").value(), (counts{2, 1, 1}));
  // Partition 0: two tickets fill the baseline, the third goes to the quarter.
  EXPECT_EQ(db->get_counts(family::drift, "00000|baseline|n").value(), counts{2});
  EXPECT_EQ(db->get_counts(family::drift, "00000|baseline|cat|cards").value(), counts{2});
  EXPECT_EQ(db->get_counts(family::drift, "00000|2026Q4|cat|disputes").value(), counts{1});
  EXPECT_EQ(db->get_counts(family::drift, "00000|2026Q4|n").value(), counts{1});
  // Partition 1: the dead letter is not in the drift statistics.
  EXPECT_EQ(db->get_counts(family::drift, "00001|baseline|n").value(), counts{1});
  // Decisions by ticket id, without text by default; examples for escalated
  // and low-confidence tickets.
  EXPECT_EQ(*db->get(family::decisions, "00000|T-1").value(), "2026Q4\tcards\t2\t0.9500\trouted");
  EXPECT_FALSE(db->get(family::examples, "00000|2026Q4|T-1").value());
  auto ex = db->get(family::examples, "00000|2026Q4|T-3").value();
  ASSERT_TRUE(ex);
  auto j = nlohmann::json::parse(*ex);
  EXPECT_EQ(j["source"], "escalated");
  EXPECT_FALSE(j.contains("text"));
  EXPECT_EQ(nlohmann::json::parse(*db->get(family::examples, "00001|2026Q4|T-5").value())["source"], "escalated");
  EXPECT_EQ(db->applied_offset(0).value(), std::optional<int64_t>(13));
  EXPECT_EQ(db->applied_offset(1).value(), std::optional<int64_t>(7));
}

TEST_F(updater_test, changelog_carries_absolute_values_and_replaying_it_reproduces_the_store) {
  updater u(*db, {.keep_ticket_text = true, .baseline_tickets = 3});
  std::vector<changelog_record> log;
  int64_t off = 0;
  for (int batch = 0; batch < 5; ++batch) {
    std::vector<ticket_fact> facts;
    for (int i = 0; i < 7; ++i, ++off) {
      const int32_t p = static_cast<int32_t>(off % 3);
      const char* cats[] = {"cards", "payments", "disputes"};
      facts.push_back(fact(p, off, "T-" + std::to_string(off), i % 3 == 2 ? "escalated" : "routed",
                           cats[off % 3], 0.3f + 0.1f * static_cast<float>(i), nov_2026 + off * hour_ms / 3));
    }
    auto up = u.prepare(facts, {{0, off}, {1, off}, {2, off}});
    ASSERT_TRUE(up) << up.error().message;
    for (const auto& r : up.value().changelog) {
      EXPECT_EQ(r.key.substr(r.key.find('/') + 1, 5), partition_prefix(r.partition).substr(0, 5)) << r.key;
      log.push_back(r);
    }
    ASSERT_TRUE(u.apply(up.value()));
  }
  // A counter's last changelog value is its store value.
  std::map<std::string, std::string> last;
  for (const auto& r : log) last[r.key] = *r.value;
  EXPECT_EQ(decode_counts(last.at("counters/00000|2026Q4|cards|2|routed")).value(),
            db->get_counts(family::counters, "00000|2026Q4|cards|2|routed").value());
  // Replay into an empty store, the way restore() does.
  auto other = store::open((base / "b").string());
  ASSERT_TRUE(other) << other.error().message;
  write_set w;
  for (const auto& r : log) {
    auto fk = parse_changelog_key(r.key);
    ASSERT_TRUE(fk) << fk.error().message;
    w.put(fk.value().first, fk.value().second, *r.value);
  }
  ASSERT_TRUE(other.value()->write(w));
  EXPECT_EQ(dump(*other.value()), dump(*db));
  EXPECT_GT(dump(*db).size(), 50u);
}

TEST_F(updater_test, kept_text_goes_through_the_redaction_hook) {
  updater u(*db, {.keep_ticket_text = true});
  std::vector<ticket_fact> facts{fact(0, 0, "T-1", "escalated", "cards", 0.2f)};
  auto up = u.prepare(facts, {{0, 1}});
  ASSERT_TRUE(up);
  ASSERT_TRUE(u.apply(up.value()));
  auto j = nlohmann::json::parse(*db->get(family::examples, "00000|2026Q4|T-1").value());
  const std::string text = j["text"];
  EXPECT_EQ(text.find("4111"), std::string::npos) << text;
  EXPECT_EQ(text.find("example.com"), std::string::npos) << text;
  EXPECT_NE(text.find("declined"), std::string::npos) << text;
  EXPECT_EQ(decode_decision(*db->get(family::decisions, "00000|T-1").value()).value().text, text);

  updater custom(*db, {.keep_ticket_text = true, .redact = [](std::string_view) { return std::string("X"); }});
  up = custom.prepare(std::vector<ticket_fact>{fact(0, 1, "T-2", "escalated", "cards", 0.2f)}, {{0, 2}});
  ASSERT_TRUE(up);
  ASSERT_TRUE(custom.apply(up.value()));
  EXPECT_EQ(nlohmann::json::parse(*db->get(family::examples, "00000|2026Q4|T-2").value())["text"], "X");
}

TEST(redact_default, masks_numbers_and_addresses_keeps_words) {
  EXPECT_EQ(redact_default("card 1234-5678 9012 3456 lost"), "card # lost");
  EXPECT_EQ(redact_default("write to jo@x.org\tplease"), "write to <email> please");
  EXPECT_EQ(redact_default("only 12 items"), "only 12 items");
}

TEST_F(updater_test, corrections_join_decisions_and_update_accuracy_and_examples) {
  updater u(*db, {});
  std::vector<ticket_fact> facts{fact(2, 0, "T-1", "routed", "cards", 0.9f),
                                 fact(2, 1, "T-2", "routed", "cards", 0.9f),
                                 fact(3, 0, "T-3", "escalated", "payments", 0.5f)};
  auto up = u.prepare(facts, {{2, 2}, {3, 1}});
  ASSERT_TRUE(up);
  ASSERT_TRUE(u.apply(up.value()));
  auto correct = [&](const std::string& id, const std::string& cat) {
    v1::Correction c;
    c.set_ticket_id(id);
    c.set_category(cat);
    c.set_source("agent-7");
    write_set w;
    auto joined = join_correction(*db, c, w);
    EXPECT_TRUE(joined) << joined.error().message;
    EXPECT_TRUE(db->write(w));
    return joined && joined.value();
  };
  EXPECT_TRUE(correct("T-1", "cards"));      // agreed
  EXPECT_TRUE(correct("T-2", "payments"));   // disagreed
  EXPECT_TRUE(correct("T-3", "payments"));   // agreed, was escalated
  EXPECT_FALSE(correct("T-404", "cards"));   // no decision stored
  EXPECT_EQ(db->get_counts(family::accuracy, "00002|2026Q4|cards").value(), (counts{2, 1}));
  EXPECT_EQ(db->get_counts(family::accuracy, "00003|2026Q4|payments").value(), (counts{1, 1}));

  auto s = summarize(*db, std::string("2026Q4"));
  ASSERT_TRUE(s) << s.error().message;
  bool saw_cards = false;
  for (const auto& c : s.value().categories) {
    if (c.category != "cards") continue;
    saw_cards = true;
    EXPECT_EQ(c.routed, 2);
    EXPECT_EQ(c.corrections, 2);
    EXPECT_DOUBLE_EQ(c.accuracy(), 0.5);
  }
  EXPECT_TRUE(saw_cards);

  std::ostringstream out;
  auto n = export_examples(*db, "2026Q4", out);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n.value(), 3u);  // T-1 and T-2 corrected, T-3 escalated and corrected
  std::istringstream lines(out.str());
  std::map<std::string, std::string> labels;
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["source"], "corrected");
    labels[j["ticket_id"]] = j["label"];
  }
  EXPECT_EQ(labels, (std::map<std::string, std::string>{{"T-1", "cards"}, {"T-2", "payments"}, {"T-3", "payments"}}));
  std::ostringstream none;
  EXPECT_EQ(export_examples(*db, "2025Q1", none).value(), 0u);
}

TEST_F(updater_test, summary_and_drift_from_the_stored_statistics) {
  updater u(*db, {.baseline_tickets = 4});
  // Baseline: 4 cards at 0.95. Then the quarter: 2 cards, 2 payments at 0.55.
  std::vector<ticket_fact> facts;
  for (int i = 0; i < 4; ++i) facts.push_back(fact(0, i, "B-" + std::to_string(i), "routed", "cards", 0.95f));
  facts.push_back(fact(0, 4, "C-1", "routed", "cards", 0.55f));
  facts.push_back(fact(0, 5, "C-2", "routed", "cards", 0.55f));
  facts.push_back(fact(0, 6, "C-3", "escalated", "payments", 0.55f));
  facts.push_back(fact(0, 7, "C-4", "escalated", "payments", 0.55f));
  auto up = u.prepare(facts, {{0, 8}});
  ASSERT_TRUE(up);
  ASSERT_TRUE(u.apply(up.value()));
  auto d = drift_of(*db, "2026Q4");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d.value().baseline_tickets, 4);
  EXPECT_EQ(d.value().tickets, 4);
  // categories {cards: 1} -> {cards: .5, payments: .5}
  const double cat = (0.5 - 1.0) * std::log(0.5) + (0.5 - 1e-4) * std::log(0.5 / 1e-4);
  EXPECT_NEAR(d.value().psi_category, cat, 1e-9);
  // confidence: all in decile 9 -> all in decile 5: two bins swap 1 <-> 1e-4
  const double conf = 2 * (1 - 1e-4) * std::log(1 / 1e-4);
  EXPECT_NEAR(d.value().psi_confidence, conf, 1e-9);
  EXPECT_NEAR(d.value().psi_length, 0.0, 1e-12);  // all 40 tokens

  auto s = summarize(*db);
  ASSERT_TRUE(s);
  ASSERT_EQ(s.value().drift.size(), 1u);
  ASSERT_EQ(s.value().hours.size(), 1u);
  EXPECT_EQ(s.value().hours[0].tickets, 8);
  EXPECT_EQ(s.value().hours[0].escalated, 2);
  const auto table = to_table(s.value());
  EXPECT_NE(table.find("payments"), std::string::npos);
  const auto j = to_json(s.value());
  EXPECT_EQ(j["categories"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["categories"][1]["escalation_rate"].get<double>(), 1.0);
}

TEST_F(updater_test, unknown_token_rate_drifts_against_the_baseline) {
  updater u(*db, {.baseline_tickets = 4});
  // Baseline: 40 tokens, none unknown. Then 2 tickets with 2/40 (5%: bin
  // [5%, 10%)) and 2 with 30/40 (75%: bin >= 50%).
  std::vector<ticket_fact> facts;
  for (int i = 0; i < 4; ++i) facts.push_back(fact(0, i, "B-" + std::to_string(i), "routed", "cards", 0.95f));
  for (int i = 0; i < 4; ++i) {
    auto f = fact(0, 4 + i, "U-" + std::to_string(i), "routed", "cards", 0.95f);
    f.unknown_tokens = i < 2 ? 2 : 30;
    facts.push_back(f);
  }
  auto up = u.prepare(facts, {{0, 8}});
  ASSERT_TRUE(up);
  ASSERT_TRUE(u.apply(up.value()));
  auto d = drift_of(*db, "2026Q4");
  ASSERT_TRUE(d) << d.error().message;
  // Bin 0 share 1 -> 1e-4; bins 4 and 7 1e-4 -> 0.5 each.
  const double expected = (1e-4 - 1) * std::log(1e-4 / 1) + 2 * (0.5 - 1e-4) * std::log(0.5 / 1e-4);
  EXPECT_NEAR(d.value().psi_unknown, expected, 1e-9);
  EXPECT_NEAR(d.value().unknown_rate, 64.0 / 160.0, 1e-12);
  EXPECT_NEAR(d.value().baseline_unknown_rate, 0.0, 1e-12);
  EXPECT_NEAR(d.value().psi_category, 0.0, 1e-12);  // nothing else moved
  auto s = summarize(*db);
  ASSERT_TRUE(s);
  EXPECT_NE(to_table(s.value()).find("psi.unkn"), std::string::npos);
  EXPECT_NEAR(to_json(s.value())["drift"][0]["psi_unknown"].get<double>(), expected, 1e-9);
  EXPECT_NEAR(to_json(s.value())["drift"][0]["unknown_rate"].get<double>(), 0.4, 1e-12);
}

TEST(state_config, section_parses_and_unknown_keys_are_errors) {
  auto r = topology::parse_config(R"(
state:
  enabled: true
  directory: /tmp/st
  changelog_topic: cl
  keep_ticket_text: true
  baseline_tickets: 50
  psi_category_alert: 0.1
  psi_unknown_alert: 0.3
)", "s.yaml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r.value().state.enabled);
  EXPECT_EQ(r.value().state.directory, "/tmp/st");
  EXPECT_EQ(r.value().state.changelog_topic, "cl");
  EXPECT_TRUE(r.value().state.keep_ticket_text);
  EXPECT_EQ(r.value().state.baseline_tickets, 50);
  EXPECT_DOUBLE_EQ(r.value().state.psi_category_alert, 0.1);
  EXPECT_DOUBLE_EQ(r.value().state.psi_unknown_alert, 0.3);
  EXPECT_FALSE(topology::parse_config("state:\n  psi_unknown_alert: -1\n", "s.yaml"));
  auto bad = topology::parse_config("state:\n  directroy: x\n", "s.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("state.directroy"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(topology::parse_config("state:\n  baseline_tickets: 0\n", "s.yaml"));
}

}  // namespace
}  // namespace triage::state
