// Metrics against small cases computed by hand (the numbers in the comments).
#include "replay/metrics.h"

#include <cmath>

#include <gtest/gtest.h>

namespace triage::replay {
namespace {

using workers::outcome;

scored_ticket t(const std::string& label, const std::string& pred, float conf, outcome kind,
                int urg_label = 0, int urg_pred = 0) {
  scored_ticket s;
  s.truth.category = label;
  s.truth.urgency = urg_label;
  s.category = pred;
  s.confidence = conf;
  s.kind = kind;
  s.urgency = urg_pred;
  s.reason = kind == outcome::escalated ? "low_confidence" : "";
  s.latency_ms = 1;
  return s;
}

std::vector<scored_ticket> hand_case() {
  std::vector<scored_ticket> v{
      t("cards", "cards", 0.92f, outcome::routed, 1, 1),
      t("cards", "payments", 0.65f, outcome::escalated, 2, 2),
      t("payments", "payments", 0.85f, outcome::routed, 3, 1),
      t("payments", "payments", 0.98f, outcome::routed),
      t("cash", "cards", 0.45f, outcome::escalated),
      t("cash", "cash", 0.75f, outcome::routed),
      t("out_of_scope", "cards", 0.30f, outcome::escalated),
      t("cards", "", 0, outcome::dead_lettered),
      t("", "cards", 0.99f, outcome::routed),
  };
  v[7].reason = "bad_json";
  return v;
}

TEST(metrics, counts_accuracy_and_rates) {
  const auto v = hand_case();
  const auto ev = evaluate(v, std::vector<double>{1, 2, 3, 4, 10});
  EXPECT_EQ(ev.records, 9u);
  EXPECT_EQ(ev.routed, 5u);
  EXPECT_EQ(ev.escalated, 3u);
  EXPECT_EQ(ev.dead_lettered, 1u);
  EXPECT_EQ(ev.classified, 8u);
  EXPECT_EQ(ev.labelled, 7u);
  EXPECT_EQ(ev.in_scope, 6u);
  EXPECT_EQ(ev.category_correct, 4u);
  EXPECT_NEAR(ev.category_accuracy, 4.0 / 6, 1e-12);
  EXPECT_EQ(ev.urgency_labelled, 3u);
  EXPECT_NEAR(ev.urgency_accuracy, 2.0 / 3, 1e-12);
  EXPECT_EQ(ev.routed_labelled, 4u);
  EXPECT_NEAR(ev.routed_accuracy, 1.0, 1e-12);
  EXPECT_NEAR(ev.escalation_rate, 3.0 / 8, 1e-12);
  EXPECT_EQ(ev.out_of_scope, 1u);
  EXPECT_EQ(ev.out_of_scope_escalated, 1u);
  EXPECT_NEAR(ev.out_of_scope_escalation, 1.0, 1e-12);
  EXPECT_EQ(ev.by_reason.at("low_confidence"), 3u);
  EXPECT_EQ(ev.by_reason.at("bad_json"), 1u);
}

TEST(metrics, per_class_macro_f1_and_confusion) {
  const auto ev = evaluate(hand_case(), {});
  ASSERT_EQ(ev.classes.size(), 3u);
  EXPECT_EQ(ev.classes[0].name, "cards");
  EXPECT_EQ(ev.classes[1].name, "cash");
  EXPECT_EQ(ev.classes[2].name, "payments");
  // cards: P 1/2, R 1/2; cash: P 1/1, R 1/2; payments: P 2/3, R 2/2.
  EXPECT_NEAR(ev.classes[0].precision, 0.5, 1e-12);
  EXPECT_NEAR(ev.classes[0].recall, 0.5, 1e-12);
  EXPECT_NEAR(ev.classes[1].precision, 1.0, 1e-12);
  EXPECT_NEAR(ev.classes[1].recall, 0.5, 1e-12);
  EXPECT_NEAR(ev.classes[1].f1, 2.0 / 3, 1e-12);
  EXPECT_NEAR(ev.classes[2].precision, 2.0 / 3, 1e-12);
  EXPECT_NEAR(ev.classes[2].recall, 1.0, 1e-12);
  EXPECT_NEAR(ev.classes[2].f1, 0.8, 1e-12);
  EXPECT_NEAR(ev.macro_f1, 59.0 / 90, 1e-12);  // (1/2 + 2/3 + 4/5) / 3
  const std::vector<std::vector<size_t>> want{{1, 0, 1}, {1, 1, 0}, {0, 0, 2}};
  EXPECT_EQ(ev.confusion, want);
}

TEST(metrics, ece_and_coverage_curve) {
  const auto ev = evaluate(hand_case(), {});
  // Bins of width 0.1: .45 wrong, .65 wrong, .75 right, .85 right, {.92, .98} right.
  // ECE = (.45 + .65 + .25 + .15 + 2 * .05) / 6.
  EXPECT_NEAR(ev.ece, 1.6 / 6, 1e-6);
  ASSERT_EQ(ev.coverage_curve.size(), 21u);
  const auto& at = [&](int i) { return ev.coverage_curve[static_cast<size_t>(i)]; };
  EXPECT_EQ(at(0).count, 6u);
  EXPECT_NEAR(at(0).accuracy, 4.0 / 6, 1e-12);
  EXPECT_NEAR(at(10).threshold, 0.5, 1e-12);
  EXPECT_EQ(at(10).count, 5u);
  EXPECT_NEAR(at(10).coverage, 5.0 / 6, 1e-12);
  EXPECT_NEAR(at(10).accuracy, 0.8, 1e-12);
  EXPECT_EQ(at(15).count, 4u);  // >= 0.75
  EXPECT_NEAR(at(15).accuracy, 1.0, 1e-12);
  EXPECT_EQ(at(19).count, 1u);  // >= 0.95
  EXPECT_EQ(at(20).count, 0u);
  EXPECT_EQ(at(20).accuracy, 0.0);
}

TEST(metrics, latency_percentiles_nearest_rank) {
  const std::vector<double> ms{10, 1, 4, 3, 2};
  const auto s = summarize_latency(ms);
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.mean, 4.0);
  EXPECT_DOUBLE_EQ(s.p50, 3.0);   // rank ceil(2.5) = 3
  EXPECT_DOUBLE_EQ(s.p90, 10.0);  // rank ceil(4.5) = 5
  EXPECT_DOUBLE_EQ(s.max, 10.0);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0.0);
  const auto h = make_histogram(ms, 5);  // from 1 to 10, width 1.8: {1,2} {3,4} {} {} {10}
  EXPECT_DOUBLE_EQ(h.lo, 1.0);
  EXPECT_DOUBLE_EQ(h.width, 1.8);
  EXPECT_EQ(h.counts, (std::vector<size_t>{2, 2, 0, 0, 1}));
  EXPECT_EQ(make_histogram(std::vector<double>{3, 3}, 4).counts, (std::vector<size_t>{2, 0, 0, 0}));
}

TEST(metrics, cascade_cost_model) {
  // 5 routed, 3 escalated; 10,000 tickets a week, 0.01 per frontier call, 0.0002 per SLM ticket.
  const auto c = estimate_cost(5, 3, {.frontier_cost_per_call = 0.01, .slm_cost_per_ticket = 0.0002,
                                      .weekly_volume = 10000});
  EXPECT_NEAR(c.auto_routed_share, 0.625, 1e-12);
  EXPECT_NEAR(c.escalated_share, 0.375, 1e-12);
  EXPECT_NEAR(c.all_frontier_weekly, 100.0, 1e-9);
  EXPECT_NEAR(c.cascade_weekly, 2.0 + 37.5, 1e-9);
  EXPECT_NEAR(c.savings_weekly, 60.5, 1e-9);
  EXPECT_NEAR(c.savings_share, 0.605, 1e-12);
  const auto ev = evaluate(hand_case(), {}, {.frontier_cost_per_call = 0.01, .slm_cost_per_ticket = 0.0002,
                                             .weekly_volume = 10000});
  EXPECT_NEAR(ev.cost.cascade_weekly, 39.5, 1e-9);
}

TEST(metrics, paired_comparison_normal_interval) {
  // a right on tickets 0,1; b right on 0,2,3: d = (0, -1, 1, 1), mean 0.25,
  // sample variance 2.75 / 3, se = sqrt(0.9166.. / 4) = 0.478714.
  std::vector<scored_ticket> a{t("x", "x", .9f, outcome::routed), t("x", "x", .9f, outcome::routed),
                               t("y", "x", .9f, outcome::routed), t("y", "x", .4f, outcome::escalated),
                               t("", "x", .9f, outcome::routed)};
  std::vector<scored_ticket> b{t("x", "x", .9f, outcome::routed), t("x", "y", .9f, outcome::routed),
                               t("y", "y", .9f, outcome::routed), t("y", "y", .9f, outcome::routed),
                               t("", "x", .3f, outcome::escalated)};
  const auto c = compare(a, b);
  EXPECT_EQ(c.records, 5u);
  EXPECT_EQ(c.paired, 4u);
  EXPECT_EQ(c.category_changed, 3u);
  EXPECT_EQ(c.outcome_changed, 2u);
  EXPECT_EQ(c.changed, 4u);
  ASSERT_EQ(c.changes.size(), 4u);
  EXPECT_EQ(c.changes[0].index, 1u);
  EXPECT_EQ(c.changes[0].category_a, "x");
  EXPECT_EQ(c.changes[0].category_b, "y");
  EXPECT_NEAR(c.accuracy_a, 0.5, 1e-12);
  EXPECT_NEAR(c.accuracy_b, 0.75, 1e-12);
  EXPECT_NEAR(c.difference, 0.25, 1e-12);
  const double se = std::sqrt(2.75 / 3 / 4);
  EXPECT_NEAR(c.ci_low, 0.25 - 1.96 * se, 1e-9);
  EXPECT_NEAR(c.ci_high, 0.25 + 1.96 * se, 1e-9);
  EXPECT_EQ(c.b_fixed, 2u);
  EXPECT_EQ(c.b_broke, 1u);
  EXPECT_NEAR(c.escalation_rate_a, 0.2, 1e-12);
  EXPECT_NEAR(c.escalation_rate_b, 0.2, 1e-12);
  EXPECT_EQ(compare(a, b, 2).changes.size(), 2u);
}

TEST(metrics, macro_f1_averages_over_labelled_classes) {
  // oos is only ever predicted: listed with F1 0, not averaged.
  std::vector<scored_ticket> v{t("a", "a", .9f, outcome::routed), t("a", "oos", .9f, outcome::routed),
                               t("b", "b", .9f, outcome::routed), t("a", "b", .9f, outcome::routed),
                               t("a", "a", .9f, outcome::routed)};
  const auto ev = evaluate(v, {});
  ASSERT_EQ(ev.classes.size(), 3u);
  EXPECT_EQ(ev.classes[2].name, "oos");
  EXPECT_EQ(ev.classes[2].support, 0u);
  EXPECT_EQ(ev.classes[2].f1, 0.0);
  // a: support 4, predicted 2, correct 2 -> P 1, R 1/2, F1 2/3. b: support 1,
  // predicted 2, correct 1 -> P 1/2, R 1, F1 2/3.
  EXPECT_NEAR(ev.classes[0].f1, 2.0 / 3, 1e-12);
  EXPECT_NEAR(ev.classes[1].f1, 2.0 / 3, 1e-12);
  EXPECT_NEAR(ev.macro_f1, 2.0 / 3, 1e-12);
}

TEST(metrics, nothing_labelled_gives_zeros_not_nan) {
  std::vector<scored_ticket> v{t("", "cards", .9f, outcome::routed)};
  const auto ev = evaluate(v, {});
  EXPECT_EQ(ev.labelled, 0u);
  EXPECT_EQ(ev.category_accuracy, 0.0);
  EXPECT_EQ(ev.macro_f1, 0.0);
  EXPECT_EQ(ev.ece, 0.0);
  EXPECT_TRUE(ev.classes.empty());
}

}  // namespace
}  // namespace triage::replay
