// metrics.h: evaluating a replay: what the pipeline decided for each ticket
// against its label, and what the cascade would cost.
//
//   std::vector<scored_ticket> s = ...;              // one per replayed record
//   auto ev = replay::evaluate(s, batch_ms, {.frontier_cost_per_call = 0.01});
//   std::printf("accuracy %.3f macro-F1 %.3f ECE %.3f\n", ev.category_accuracy, ev.macro_f1, ev.ece);
//   auto cmp = replay::compare(run_a, run_b);         // same records, two adapters or policies
//
// Definitions (also in replay/README.md):
// - "labelled": the ticket has a category label and was classified (not
//   dead-lettered). Tickets labelled out_of_scope are not counted in category
//   accuracy, F1, the confusion matrix, ECE or the coverage curve (no category
//   of the taxonomy is right for them); they are counted in out-of-scope
//   escalation.
// - category accuracy: share of in-scope labelled tickets whose predicted
//   category equals the label, whatever the routing decision.
// - per-class precision tp/(tp+fp), recall tp/(tp+fn), F1 their harmonic mean,
//   0 when undefined; macro-F1 the unweighted mean over the classes that occur
//   as labels (a class only ever predicted lowers the others' recall instead).
// - ECE: classifier::reliability over (confidence, correct), 10 equal bins.
// - coverage-accuracy: for thresholds 0, 0.05, ..., 1: the share of in-scope
//   labelled tickets with confidence >= t, and the accuracy among them.
// - escalation rate: escalated / classified (routed + escalated).
// - out-of-scope escalation: escalated / tickets labelled out_of_scope.
// - latency: each batch's classification time; per ticket, its batch's time
//   divided by the batch's size. Percentiles by the nearest-rank method.
// - cost (per week, volume V): all-frontier V * frontier_cost; cascade
//   V * slm_cost + V * escalation_rate * frontier_cost; savings the difference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "replay/source.h"
#include "workers/processor.h"

namespace triage::replay {

// What the pipeline did with one replayed record, next to its label.
struct scored_ticket {
  std::string id;               // ticket id, or source coordinates for dead letters
  std::string source;           // "topic/partition/offset" of the input record
  label truth;
  workers::outcome kind = workers::outcome::routed;
  std::string category;         // predicted (empty for dead letters)
  int urgency = 0;              // predicted
  float confidence = 0;
  std::string reason;           // escalation or dead-letter reason
  double latency_ms = 0;        // this ticket's share of its batch's classification time
};

struct cost_options {
  // Price of one frontier-model call (an escalated ticket). Default: 0.01. Bounds: >= 0.
  double frontier_cost_per_call = 0.01;
  // Cost of classifying one ticket with the SLM (amortised hardware). Default: 0.0002. Bounds: >= 0.
  double slm_cost_per_ticket = 0.0002;
  // Tickets per week the estimate is made for. Default: 10000. Bounds: >= 0.
  double weekly_volume = 10000;
};

struct class_metrics {
  std::string name;
  size_t support = 0;    // labelled with this class
  size_t predicted = 0;  // predicted as this class
  size_t correct = 0;    // both
  double precision = 0, recall = 0, f1 = 0;
};

struct curve_point {
  double threshold = 0;
  double coverage = 0;   // share of in-scope labelled tickets with confidence >= threshold
  double accuracy = 0;   // accuracy among them (0 when none)
  size_t count = 0;
};

struct latency_stats {
  size_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;  // milliseconds
};

// Equal-width bins from the smallest value to the largest (the last bin
// includes the largest); width 1 when all values are equal.
struct histogram {
  double lo = 0, width = 0;     // bin i covers [lo + i*width, lo + (i+1)*width)
  std::vector<size_t> counts;
};

struct cost_estimate {
  cost_options options;
  double auto_routed_share = 0;  // routed / classified
  double escalated_share = 0;    // escalated / classified
  double all_frontier_weekly = 0;
  double cascade_weekly = 0;
  double savings_weekly = 0;
  double savings_share = 0;      // savings / all-frontier (0 when that is 0)
};

struct evaluation {
  size_t records = 0, classified = 0, routed = 0, escalated = 0, dead_lettered = 0;
  std::map<std::string, size_t> by_reason;  // escalation and dead-letter reasons

  size_t labelled = 0;           // classified with a category label, out_of_scope included
  size_t in_scope = 0;           // of those, labelled with a taxonomy category
  size_t category_correct = 0;
  double category_accuracy = 0;
  size_t urgency_labelled = 0, urgency_correct = 0;
  double urgency_accuracy = 0;
  double macro_f1 = 0;
  std::vector<class_metrics> classes;               // sorted by name
  std::vector<std::vector<size_t>> confusion;       // [label][predicted], over `classes`
  double ece = 0;
  struct bin {
    double lo = 0, hi = 0, mean_confidence = 0, accuracy = 0;
    size_t count = 0;
  };
  std::vector<bin> reliability;
  std::vector<curve_point> coverage_curve;
  // The policy as applied: in-scope labelled tickets that were routed, and how many were right.
  size_t routed_labelled = 0, routed_correct = 0;
  double routed_accuracy = 0;
  double escalation_rate = 0;
  size_t out_of_scope = 0, out_of_scope_escalated = 0;
  double out_of_scope_escalation = 0;

  latency_stats batch_latency, ticket_latency;
  histogram ticket_latency_histogram;
  cost_estimate cost;
};

evaluation evaluate(std::span<const scored_ticket> tickets, std::span<const double> batch_ms,
                    const cost_options& cost = {});

// Nearest-rank percentile (p in [0, 100]) of unsorted values; 0 when empty.
double percentile(std::vector<double> values, double p);
latency_stats summarize_latency(std::span<const double> ms);
histogram make_histogram(std::span<const double> values, size_t bins);
cost_estimate estimate_cost(size_t routed, size_t escalated, const cost_options& options);

// Two runs over the same records (same order), e.g. two adapters or policies.
struct ticket_change {
  size_t index = 0;               // position in the replayed stream
  std::string id;
  std::string label;              // the category label, if any
  std::string category_a, category_b;
  workers::outcome kind_a = workers::outcome::routed, kind_b = workers::outcome::routed;
  float confidence_a = 0, confidence_b = 0;
};

struct comparison {
  size_t records = 0;
  size_t changed = 0;             // category or outcome differs
  size_t category_changed = 0, outcome_changed = 0;
  std::vector<ticket_change> changes;   // the first `max_changes`, in stream order
  // Paired accuracy over in-scope labelled tickets classified by both runs:
  // d_i = correct_b - correct_a; difference = mean(d); 95% interval by the
  // normal approximation mean(d) +- 1.96 * sd(d) / sqrt(n) (sd with n - 1).
  size_t paired = 0;
  double accuracy_a = 0, accuracy_b = 0, difference = 0, ci_low = 0, ci_high = 0;
  size_t b_fixed = 0;             // a wrong, b right
  size_t b_broke = 0;             // a right, b wrong
  double escalation_rate_a = 0, escalation_rate_b = 0;
};

comparison compare(std::span<const scored_ticket> a, std::span<const scored_ticket> b,
                   size_t max_changes = 200);

}  // namespace triage::replay
