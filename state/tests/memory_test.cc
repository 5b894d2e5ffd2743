// The store's memory budget and the decisions retention: a few hundred
// thousand decisions through a store with a small budget keep RocksDB's
// reported memory (memtables + block cache + table readers) within the
// budget; a bad budget is refused, in the store options and in the config
// (with the key named); old decisions go at compaction, recent ones stay.
#include <chrono>
#include <filesystem>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "state/drift.h"
#include "state/store.h"
#include "state/updater.h"
#include "topology/config.h"

namespace triage::state {
namespace {

struct memory_test : ::testing::Test {
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("triage-state-memory-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
           "-" + std::to_string(std::random_device{}()));
    std::filesystem::remove_all(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
};

// A decision as the worker stores it with keep_ticket_text, ~230 bytes.
std::string decision_value(std::mt19937& rng, const std::string& quarter) {
  std::string text(180, ' ');
  for (auto& c : text) c = static_cast<char>('a' + rng() % 26);
  decision_record d;
  d.quarter = quarter;
  d.category = "card_arrival";
  d.urgency = 2;
  d.confidence = 0.8125f;
  d.outcome = "routed";
  d.text = text;
  return encode_decision(d);
}

TEST_F(memory_test, a_few_hundred_thousand_decisions_stay_within_the_budget) {
  // 300000 x ~250 bytes = ~75 MB of decisions through a 16 MB budget: with
  // RocksDB's defaults (64 MB write buffer per family, index and filter
  // blocks outside any cache) the decisions memtable alone would pass it.
  constexpr int budget_mb = 16;
  constexpr int records = 300000;
  auto s = store::open(dir.string(), {.no_wal = true, .memory_budget_mb = budget_mb});
  ASSERT_TRUE(s) << s.error().message;
  auto& st = *s.value();
  const uint64_t budget = st.memory_budget_bytes();
  ASSERT_EQ(budget, uint64_t{budget_mb} << 20);
  // Margin: RocksDB flushes in the background, so the memtables may pass
  // their half of the budget by a write buffer or so while a flush runs, and
  // pinned L0 index and filter blocks may push the cache a little over its
  // capacity: 25% of the budget.
  const uint64_t limit = budget + budget / 4;
  std::mt19937 rng(7);
  uint64_t peak = 0, peak_memtables = 0;
  for (int i = 0; i < records;) {
    write_set w;
    for (int j = 0; j < 500; ++j, ++i) {
      w.put(family::decisions, partition_prefix(i % 6) + "T-" + std::to_string(i), decision_value(rng, "2026Q4"));
    }
    w.add(family::counters, "00000|2026Q4|card_arrival|2|routed", {500});
    ASSERT_TRUE(st.write(w));
    if (i % 10000 == 0) {
      // Reads fill the block cache with data, index and filter blocks.
      for (int k = 0; k < 200; ++k) {
        const int t = static_cast<int>(rng() % static_cast<unsigned>(i));
        auto v = st.get(family::decisions, partition_prefix(t % 6) + "T-" + std::to_string(t));
        ASSERT_TRUE(v) << v.error().message;
        ASSERT_TRUE(v.value().has_value()) << "T-" << t;
      }
      auto m = st.memory();
      ASSERT_TRUE(m) << m.error().message;
      peak = std::max(peak, m.value().total());
      peak_memtables = std::max(peak_memtables, m.value().memtables);
      EXPECT_LE(m.value().total(), limit)
          << "after " << i << " records: memtables " << m.value().memtables << ", block cache "
          << m.value().block_cache << ", table readers " << m.value().table_readers;
    }
  }
  // The accounting is live: the memtables were seen holding data, and the
  // data written passed the budget several times over (so it was flushed).
  EXPECT_GT(peak_memtables, uint64_t{1} << 20);
  EXPECT_GT(uint64_t{records} * 230, 4 * budget);
  EXPECT_LE(peak, limit);
  auto last = st.get(family::decisions, partition_prefix((records - 1) % 6) + "T-" + std::to_string(records - 1));
  ASSERT_TRUE(last && last.value().has_value());
  EXPECT_EQ(decode_decision(*last.value()).value().category, "card_arrival");
}

TEST_F(memory_test, a_budget_out_of_bounds_is_refused) {
  for (int mb : {0, 7, -1, 65537}) {
    auto s = store::open(dir.string(), {.memory_budget_mb = mb});
    ASSERT_FALSE(s) << mb;
    EXPECT_EQ(s.error().code, make_error_code(errc::invalid_argument));
    EXPECT_NE(s.error().message.find("memory_budget_mb"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find(dir.string()), std::string::npos) << s.error().message;
  }
  auto r = store::open(dir.string(), {.decisions_retention_days = -3});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("decisions_retention_days"), std::string::npos) << r.error().message;
  EXPECT_TRUE(store::open(dir.string(), {.memory_budget_mb = 8}));
}

TEST(memory_config, a_bad_budget_in_the_config_names_the_key) {
  for (const char* v : {"4", "100000", "lots"}) {
    auto r = topology::parse_config(std::string("state:\n  memory_budget_mb: ") + v + "\n", "c.yaml");
    ASSERT_FALSE(r) << v;
    EXPECT_NE(r.error().message.find("state.memory_budget_mb"), std::string::npos) << r.error().message;
  }
  auto bad_days = topology::parse_config("state:\n  decisions_retention_days: -1\n", "c.yaml");
  ASSERT_FALSE(bad_days);
  EXPECT_NE(bad_days.error().message.find("state.decisions_retention_days"), std::string::npos)
      << bad_days.error().message;
  auto ok = topology::parse_config("state:\n  memory_budget_mb: 256\n  decisions_retention_days: 0\n", "c.yaml");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok.value().state.memory_budget_mb, 256);
  EXPECT_EQ(ok.value().state.decisions_retention_days, 0);
  auto defaults = topology::parse_config("", "c.yaml");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults.value().state.memory_budget_mb, 64);
  EXPECT_EQ(defaults.value().state.decisions_retention_days, 30);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_F(memory_test, compaction_drops_decisions_of_quarters_past_the_retention) {
  constexpr int64_t day_ms = 86400000;
  const std::string current = quarter_of(now_ms());
  // 30 days of retention: the quarter holding now - 30 days is kept, every
  // quarter before it goes; a quarter 200 days back is always before it.
  const std::string kept_edge = quarter_of(now_ms() - 30 * day_ms);
  const std::string old = quarter_of(now_ms() - 200 * day_ms);
  ASSERT_LT(old, kept_edge);
  std::mt19937 rng(3);
  {
    auto s = store::open(dir.string(), {.decisions_retention_days = 30});
    ASSERT_TRUE(s) << s.error().message;
    write_set w;
    w.put(family::decisions, "00001|T-old", decision_value(rng, old));
    w.put(family::decisions, "00001|T-edge", decision_value(rng, kept_edge));
    w.put(family::decisions, "00001|T-now", decision_value(rng, current));
    w.put(family::decisions, "00001|T-odd", "no tab here");  // not a decision: kept
    w.put(family::examples, "00001|" + old + "|T-old", "{}");  // other families untouched
    w.put(family::meta, applied_key(1), encode_counts({4}));
    ASSERT_TRUE(s.value()->write(w));
    ASSERT_TRUE(s.value()->get(family::decisions, "00001|T-old").value().has_value());
    ASSERT_TRUE(s.value()->compact());
    EXPECT_FALSE(s.value()->get(family::decisions, "00001|T-old").value().has_value());
    EXPECT_TRUE(s.value()->get(family::decisions, "00001|T-edge").value().has_value());
    EXPECT_TRUE(s.value()->get(family::decisions, "00001|T-now").value().has_value());
    EXPECT_TRUE(s.value()->get(family::decisions, "00001|T-odd").value().has_value());
    EXPECT_TRUE(s.value()->get(family::examples, "00001|" + old + "|T-old").value().has_value());
    // A correction for the dropped decision is one for an unknown ticket.
    v1::Correction c;
    c.set_ticket_id("T-old");
    c.set_category("card_arrival");
    write_set effects;
    auto joined = join_correction(*s.value(), c, effects);
    ASSERT_TRUE(joined) << joined.error().message;
    EXPECT_FALSE(joined.value());
    EXPECT_TRUE(effects.empty());
    c.set_ticket_id("T-now");  // a kept one still joins
    auto kept = join_correction(*s.value(), c, effects);
    ASSERT_TRUE(kept) << kept.error().message;
    EXPECT_TRUE(kept.value());
    // Written again (a changelog restore), it lives until the next compaction.
    write_set again;
    again.put(family::decisions, "00001|T-old", decision_value(rng, old));
    ASSERT_TRUE(s.value()->write(again));
  }
  // Without retention (0, the default) nothing goes.
  auto s = store::open(dir.string());
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_TRUE(s.value()->compact());
  EXPECT_TRUE(s.value()->get(family::decisions, "00001|T-old").value().has_value());
}

}  // namespace
}  // namespace triage::state
