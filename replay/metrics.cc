#include "replay/metrics.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "compute/classifier/calibration.h"

namespace triage::replay {
namespace {

double ratio(size_t a, size_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }

bool in_scope_labelled(const scored_ticket& t) {
  return t.kind != workers::outcome::dead_lettered && t.truth.has_category() && !t.truth.out_of_scope();
}

}  // namespace

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  // Nearest rank: the smallest value with at least p% of the values at or below it.
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return values[std::min(i, values.size() - 1)];
}

latency_stats summarize_latency(std::span<const double> ms) {
  latency_stats s;
  s.count = ms.size();
  if (ms.empty()) return s;
  std::vector<double> v(ms.begin(), ms.end());
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  s.p50 = percentile(v, 50);
  s.p90 = percentile(v, 90);
  s.p99 = percentile(v, 99);
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

histogram make_histogram(std::span<const double> values, size_t bins) {
  histogram h;
  h.counts.assign(bins, 0);
  if (values.empty() || bins == 0) return h;
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  h.lo = *lo;
  h.width = *hi > *lo ? (*hi - *lo) / static_cast<double>(bins) : 1.0;
  for (double v : values) {
    auto i = static_cast<size_t>(std::max(0.0, v - h.lo) / h.width);
    h.counts[std::min(i, bins - 1)]++;
  }
  return h;
}

cost_estimate estimate_cost(size_t routed, size_t escalated, const cost_options& o) {
  cost_estimate c;
  c.options = o;
  c.auto_routed_share = ratio(routed, routed + escalated);
  c.escalated_share = ratio(escalated, routed + escalated);
  c.all_frontier_weekly = o.weekly_volume * o.frontier_cost_per_call;
  c.cascade_weekly = o.weekly_volume * o.slm_cost_per_ticket +
                     o.weekly_volume * c.escalated_share * o.frontier_cost_per_call;
  c.savings_weekly = c.all_frontier_weekly - c.cascade_weekly;
  c.savings_share = c.all_frontier_weekly > 0 ? c.savings_weekly / c.all_frontier_weekly : 0.0;
  return c;
}

evaluation evaluate(std::span<const scored_ticket> tickets, std::span<const double> batch_ms,
                    const cost_options& cost) {
  evaluation ev;
  ev.records = tickets.size();
  std::set<std::string> names;
  std::vector<float> conf;
  std::vector<uint8_t> correct;
  std::vector<double> ticket_ms;
  for (const auto& t : tickets) {
    switch (t.kind) {
      case workers::outcome::routed: ++ev.routed; break;
      case workers::outcome::escalated: ++ev.escalated; break;
      case workers::outcome::dead_lettered: ++ev.dead_lettered; break;
    }
    if (!t.reason.empty()) ev.by_reason[t.reason]++;
    if (t.kind == workers::outcome::dead_lettered) continue;
    ++ev.classified;
    ticket_ms.push_back(t.latency_ms);
    if (!t.truth.has_category()) continue;
    ++ev.labelled;
    if (t.truth.out_of_scope()) {
      ++ev.out_of_scope;
      if (t.kind == workers::outcome::escalated) ++ev.out_of_scope_escalated;
      continue;
    }
    ++ev.in_scope;
    const bool ok = t.category == t.truth.category;
    ev.category_correct += ok;
    conf.push_back(t.confidence);
    correct.push_back(ok);
    names.insert(t.truth.category);
    names.insert(t.category);
    if (t.kind == workers::outcome::routed) {
      ++ev.routed_labelled;
      ev.routed_correct += ok;
    }
    if (t.truth.urgency > 0) {
      ++ev.urgency_labelled;
      ev.urgency_correct += t.urgency == t.truth.urgency;
    }
  }
  ev.category_accuracy = ratio(ev.category_correct, ev.in_scope);
  ev.urgency_accuracy = ratio(ev.urgency_correct, ev.urgency_labelled);
  ev.routed_accuracy = ratio(ev.routed_correct, ev.routed_labelled);
  ev.escalation_rate = ratio(ev.escalated, ev.classified);
  ev.out_of_scope_escalation = ratio(ev.out_of_scope_escalated, ev.out_of_scope);

  // Per class and the confusion matrix, over the classes seen as label or prediction.
  const std::vector<std::string> cls(names.begin(), names.end());
  auto index = [&](const std::string& n) {
    return static_cast<size_t>(std::lower_bound(cls.begin(), cls.end(), n) - cls.begin());
  };
  ev.confusion.assign(cls.size(), std::vector<size_t>(cls.size(), 0));
  ev.classes.resize(cls.size());
  for (size_t i = 0; i < cls.size(); ++i) ev.classes[i].name = cls[i];
  for (const auto& t : tickets) {
    if (!in_scope_labelled(t)) continue;
    const size_t l = index(t.truth.category), p = index(t.category);
    ev.confusion[l][p]++;
    ev.classes[l].support++;
    ev.classes[p].predicted++;
    if (l == p) ev.classes[l].correct++;
  }
  double f1_sum = 0;
  size_t f1_classes = 0;
  for (auto& c : ev.classes) {
    c.precision = ratio(c.correct, c.predicted);
    c.recall = ratio(c.correct, c.support);
    c.f1 = c.precision + c.recall > 0 ? 2 * c.precision * c.recall / (c.precision + c.recall) : 0.0;
    // Over the labelled classes: a class only ever predicted (the model's
    // "out_of_scope", say) costs the true classes recall, not a zero of its own.
    if (c.support > 0) {
      f1_sum += c.f1;
      ++f1_classes;
    }
  }
  ev.macro_f1 = f1_classes ? f1_sum / static_cast<double>(f1_classes) : 0.0;

  if (!conf.empty()) {
    const auto rel = classifier::reliability(conf, correct, 10);
    ev.ece = rel.ece;
    for (const auto& b : rel.bins) {
      ev.reliability.push_back({b.lo, b.hi, b.mean_confidence, b.accuracy, b.count});
    }
  }
  for (int i = 0; i <= 20; ++i) {
    curve_point p;
    p.threshold = i / 20.0;
    for (size_t k = 0; k < conf.size(); ++k) {
      if (static_cast<double>(conf[k]) >= p.threshold - 1e-9) {
        ++p.count;
        p.accuracy += correct[k];
      }
    }
    p.accuracy = p.count ? p.accuracy / static_cast<double>(p.count) : 0.0;
    p.coverage = ratio(p.count, conf.size());
    ev.coverage_curve.push_back(p);
  }

  ev.batch_latency = summarize_latency(batch_ms);
  ev.ticket_latency = summarize_latency(ticket_ms);
  ev.ticket_latency_histogram = make_histogram(ticket_ms, 20);
  ev.cost = estimate_cost(ev.routed, ev.escalated, cost);
  return ev;
}

comparison compare(std::span<const scored_ticket> a, std::span<const scored_ticket> b,
                   size_t max_changes) {
  comparison c;
  c.records = std::min(a.size(), b.size());
  size_t correct_a = 0, correct_b = 0, esc_a = 0, esc_b = 0, cls_a = 0, cls_b = 0;
  std::vector<double> d;
  for (size_t i = 0; i < c.records; ++i) {
    const auto& x = a[i];
    const auto& y = b[i];
    if (x.kind != workers::outcome::dead_lettered) {
      ++cls_a;
      esc_a += x.kind == workers::outcome::escalated;
    }
    if (y.kind != workers::outcome::dead_lettered) {
      ++cls_b;
      esc_b += y.kind == workers::outcome::escalated;
    }
    const bool cat = x.category != y.category, out = x.kind != y.kind;
    c.category_changed += cat;
    c.outcome_changed += out;
    if (cat || out) {
      ++c.changed;
      if (c.changes.size() < max_changes) {
        c.changes.push_back({i, x.id, x.truth.category, x.category, y.category, x.kind, y.kind,
                             x.confidence, y.confidence});
      }
    }
    if (in_scope_labelled(x) && in_scope_labelled(y)) {
      const bool ra = x.category == x.truth.category, rb = y.category == y.truth.category;
      correct_a += ra;
      correct_b += rb;
      c.b_fixed += !ra && rb;
      c.b_broke += ra && !rb;
      d.push_back(static_cast<double>(rb) - static_cast<double>(ra));
    }
  }
  c.paired = d.size();
  c.accuracy_a = ratio(correct_a, c.paired);
  c.accuracy_b = ratio(correct_b, c.paired);
  c.escalation_rate_a = ratio(esc_a, cls_a);
  c.escalation_rate_b = ratio(esc_b, cls_b);
  if (!d.empty()) {
    double mean = 0;
    for (double x : d) mean += x;
    mean /= static_cast<double>(d.size());
    double var = 0;
    for (double x : d) var += (x - mean) * (x - mean);
    var = d.size() > 1 ? var / static_cast<double>(d.size() - 1) : 0.0;
    const double se = std::sqrt(var / static_cast<double>(d.size()));
    c.difference = mean;
    c.ci_low = mean - 1.96 * se;
    c.ci_high = mean + 1.96 * se;
  }
  return c;
}

}  // namespace triage::replay
