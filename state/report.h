// report.h: what the store says, summed over its partitions: per quarter and
// category the outcomes, escalation rate, confidence and accuracy against
// corrections; per quarter the drift from the baseline; the hourly
// escalation-rate windows; and the retraining set of a quarter as JSONL.
//
//   auto s = summarize(*store, "2026Q4");       // nullopt: every quarter
//   std::cout << to_table(s.value());            // or to_json(s.value()).dump(2)
//   auto n = export_examples(*store, "2026Q4", out);   // lines written
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"
#include "state/store.h"

namespace triage::state {

struct category_stats {
  std::string quarter;
  std::string category;  // "-" for dead letters
  int64_t routed = 0;
  int64_t escalated = 0;
  int64_t dead_lettered = 0;
  counts confidence;     // deciles
  int64_t corrections = 0;
  int64_t agreed = 0;    // corrections that kept the category
  // Shadow mode (workers/shadow.h), by the live category: tickets the
  // candidate adapter also judged, how many it gave the same category and
  // the same route (both routed or both escalated), how many it would have
  // escalated; of the corrections of shadowed tickets, how many agreed with
  // the candidate and with the live adapter (the same tickets: paired).
  int64_t shadow_decisions = 0;
  int64_t shadow_same_category = 0;
  int64_t shadow_same_route = 0;
  int64_t shadow_escalated = 0;
  int64_t shadow_live_escalated = 0;  // of the shadowed tickets, escalated by the live adapter
  int64_t shadow_corrections = 0;
  int64_t shadow_agreed = 0;
  int64_t shadow_live_agreed = 0;

  int64_t tickets() const { return routed + escalated + dead_lettered; }
  double escalation_rate() const;  // escalated / tickets
  double accuracy() const;         // agreed / corrections; -1 without corrections
  // shadow_agreed / shadow_corrections, shadow_live_agreed / shadow_corrections; -1 without.
  double shadow_accuracy() const;
  double shadow_live_accuracy() const;
};

struct drift_stats {
  std::string quarter;
  int64_t baseline_tickets = 0;
  int64_t tickets = 0;  // of the quarter, beyond the baseline
  double psi_category = 0;
  double psi_confidence = 0;
  double psi_length = 0;
  double psi_unknown = 0;            // of the per-ticket unknown-token rate bins
  double unknown_rate = 0;           // unknown tokens / tokens of the quarter
  double baseline_unknown_rate = 0;  // the same over the baseline
};

struct hour_stats {
  std::string hour;  // "2026-11-24T03"
  int64_t tickets = 0;
  int64_t escalated = 0;
  int64_t dead_lettered = 0;
};

struct summary {
  std::vector<category_stats> categories;  // by quarter, then category
  std::vector<drift_stats> drift;          // by quarter
  std::vector<hour_stats> hours;           // oldest first
};

// `quarter`: only that quarter; nullopt: all. `partition`: only that
// partition; nullopt: all of the store's.
result<summary> summarize(const store& s, const std::optional<std::string>& quarter = std::nullopt,
                          const std::optional<int32_t>& partition = std::nullopt);
// The drift of one quarter (of one partition, or all).
result<drift_stats> drift_of(const store& s, const std::string& quarter,
                             const std::optional<int32_t>& partition = std::nullopt);

std::string to_table(const summary& s, int last_hours = 24);
nlohmann::json to_json(const summary& s);

// Writes the quarter's retraining examples (escalated, low-confidence,
// corrected), one JSON object a line; returns how many.
result<size_t> export_examples(const store& s, const std::string& quarter, std::ostream& out);

}  // namespace triage::state
