#include "ops/metrics/probe.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ops/metrics/health.h"
#include "ops/metrics/server.h"
#include "ops/tests/metrics_test_util.h"

namespace triage::ops {
namespace {

using testing::sample;

std::string render(const prometheus::Registry& r) {
  health h;
  return render_metrics(r, h);
}

TEST(worker_probe, counts_tickets_by_outcome_and_category) {
  prometheus::Registry r;
  worker_probe p(r);
  p.consumed(3, 5);
  p.consumed(4);
  p.ticket_out(outcome::routed, "payments", 0.93);
  p.ticket_out(outcome::routed, "payments", 0.81);
  p.ticket_out(outcome::escalated, "disputes", 0.99);
  p.escalated("always_escalate");
  p.ticket_out(outcome::dead_lettered, "ignored", 0);
  p.dead_lettered("bad_protobuf");
  const std::string t = render(r);
  EXPECT_EQ(sample(t, R"(triage_tickets_consumed_total{partition="3"})"), 5) << t;
  EXPECT_EQ(sample(t, R"(triage_tickets_consumed_total{partition="4"})"), 1);
  EXPECT_EQ(sample(t, R"(triage_tickets_out_total{category="payments",outcome="routed"})"), 2);
  EXPECT_EQ(sample(t, R"(triage_tickets_out_total{category="disputes",outcome="escalated"})"), 1);
  EXPECT_EQ(sample(t, R"(triage_tickets_out_total{category="none",outcome="dead_lettered"})"), 1);
  EXPECT_FALSE(sample(t, R"(triage_tickets_out_total{category="ignored",outcome="dead_lettered"})"));
  EXPECT_EQ(sample(t, R"(triage_escalations_total{reason="always_escalate"})"), 1);
  EXPECT_EQ(sample(t, R"(triage_dead_letters_total{reason="bad_protobuf"})"), 1);
  // Confidence: dead letters are not observed; 0.81 and 0.93 fall in (0.8, 0.85] and (0.9, 0.95].
  EXPECT_EQ(sample(t, R"(triage_confidence_count{category="payments"})"), 2);
  EXPECT_EQ(sample(t, R"(triage_confidence_bucket{category="payments",le="0.8"})"), 0);
  EXPECT_EQ(sample(t, R"(triage_confidence_bucket{category="payments",le="0.85"})"), 1);
  EXPECT_EQ(sample(t, R"(triage_confidence_bucket{category="payments",le="0.95"})"), 2);
  EXPECT_FALSE(sample(t, R"(triage_confidence_count{category="none"})"));
}

TEST(worker_probe, queue_depth_of_instances_adds_up_and_leaves_with_them) {
  prometheus::Registry r;
  worker_probe a(r);
  {
    worker_probe b(r);
    a.queue(100, 2500, 6, 1);
    b.queue(40, 900, 0, 0);
    std::string t = render(r);
    EXPECT_EQ(sample(t, "triage_queue_tickets"), 140) << t;
    EXPECT_EQ(sample(t, "triage_queue_tokens"), 3400);
    EXPECT_EQ(sample(t, "triage_paused_partitions"), 6);
    EXPECT_EQ(sample(t, "triage_partition_pauses_total"), 1);
    a.queue(10, 200, 0, 3);  // drained and resumed; paused twice more meanwhile
    t = render(r);
    EXPECT_EQ(sample(t, "triage_queue_tickets"), 50) << t;
    EXPECT_EQ(sample(t, "triage_paused_partitions"), 0);
    EXPECT_EQ(sample(t, "triage_partition_pauses_total"), 3);
  }
  const std::string t = render(r);  // b stopped: its 40 queued tickets are gone
  EXPECT_EQ(sample(t, "triage_queue_tickets"), 10) << t;
  EXPECT_EQ(sample(t, "triage_queue_tokens"), 200);
  EXPECT_EQ(sample(t, "triage_partition_pauses_total"), 3);
}

TEST(worker_probe, state_memory_of_instances_adds_up_and_shadow_decisions_count_by_agreement) {
  prometheus::Registry r;
  worker_probe a(r);
  {
    worker_probe b(r);
    a.state_memory(5'000'000);
    b.state_memory(3'000'000);
    EXPECT_EQ(sample(render(r), "triage_state_memory_bytes"), 8'000'000);
    a.state_memory(4'000'000);
    EXPECT_EQ(sample(render(r), "triage_state_memory_bytes"), 7'000'000);
  }
  EXPECT_EQ(sample(render(r), "triage_state_memory_bytes"), 4'000'000);
  a.shadow_decision(true, true);
  a.shadow_decision(true, true);
  a.shadow_decision(false, true);
  a.shadow_decision(false, false);
  const std::string t = render(r);
  EXPECT_EQ(sample(t, R"(triage_shadow_decisions_total{category="same",route="same"})"), 2) << t;
  EXPECT_EQ(sample(t, R"(triage_shadow_decisions_total{category="different",route="same"})"), 1);
  EXPECT_EQ(sample(t, R"(triage_shadow_decisions_total{category="different",route="different"})"), 1);
  EXPECT_FALSE(sample(t, R"(triage_shadow_decisions_total{category="same",route="different"})"));
}

TEST(worker_probe, batches_latency_and_commits) {
  prometheus::Registry r;
  worker_probe p(r);
  p.batch(7, 900, 0.02);  // before set_model: labelled unknown
  p.set_model("smollm2", "a1", "vulkan", "llvmpipe");
  p.batch(32, 5000, 0.3);
  const std::vector<double> e2e{0.04, 2.0, 7.0};
  p.committed(e2e);
  p.transaction_aborted();
  const std::string t = render(r);
  EXPECT_EQ(sample(t, "triage_batches_total"), 2) << t;
  EXPECT_EQ(sample(t, "triage_batch_tickets_sum"), 39);
  EXPECT_EQ(sample(t, R"(triage_batch_tickets_bucket{le="8"})"), 1);
  EXPECT_EQ(sample(t, "triage_batch_tokens_sum"), 5900);
  EXPECT_EQ(sample(t, R"(triage_inference_seconds_count{backend="unknown",device="unknown"})"), 1);
  EXPECT_EQ(sample(t, R"(triage_inference_seconds_count{backend="vulkan",device="llvmpipe"})"), 1);
  EXPECT_EQ(sample(t, "triage_commits_total"), 1);
  EXPECT_EQ(sample(t, "triage_end_to_end_seconds_count"), 3);
  EXPECT_EQ(sample(t, R"(triage_end_to_end_seconds_bucket{le="1"})"), 1);
  EXPECT_EQ(sample(t, R"(triage_end_to_end_seconds_bucket{le="5"})"), 2);
  EXPECT_EQ(sample(t, "triage_transactions_aborted_total"), 1);
}

TEST(worker_probe, model_info_is_replaced_not_added) {
  prometheus::Registry r;
  worker_probe p(r);
  p.set_model("m1", "a1", "cpu", "x86_64");
  p.set_model("m1", "a2", "vulkan", "gpu0");
  const std::string t = render(r);
  EXPECT_EQ(
      sample(t, R"(triage_model_info{adapter_version="a2",backend="vulkan",device="gpu0",model_version="m1"})"),
      1)
      << t;
  EXPECT_EQ(t.find(R"(adapter_version="a1")"), std::string::npos) << t;
}

TEST(worker_probe, revoked_partition_gauges_disappear) {
  prometheus::Registry r;
  worker_probe p(r);
  p.rebalanced(2);
  p.lag("tickets", 1, 40);
  p.lag("tickets", 2, 7);
  p.drift("psi_category", 1, 0.3);
  p.drift("psi_length", 2, 0.1);
  p.drift_threshold("psi_category", 0.25);
  p.escalation_rate(1, 0.2);
  p.revoked("tickets", 1);
  p.rebalanced(1);
  const std::string t = render(r);
  EXPECT_FALSE(sample(t, R"(triage_consumer_lag{partition="1",topic="tickets"})")) << t;
  EXPECT_FALSE(sample(t, R"(triage_drift_psi{partition="1",statistic="psi_category"})"));
  EXPECT_FALSE(sample(t, R"(triage_escalation_rate{partition="1"})"));
  EXPECT_EQ(sample(t, R"(triage_consumer_lag{partition="2",topic="tickets"})"), 7);
  EXPECT_EQ(sample(t, R"(triage_drift_psi{partition="2",statistic="psi_length"})"), 0.1);
  EXPECT_EQ(sample(t, R"(triage_drift_psi_threshold{statistic="psi_category"})"), 0.25);
  EXPECT_EQ(sample(t, "triage_rebalances_total"), 2);
  EXPECT_EQ(sample(t, "triage_assigned_partitions"), 1);
  // Assigned again: the gauge comes back.
  p.lag("tickets", 1, 3);
  EXPECT_EQ(sample(render(r), R"(triage_consumer_lag{partition="1",topic="tickets"})"), 3);
}

TEST(worker_probe, two_probes_on_one_registry_add_up) {
  prometheus::Registry r;
  worker_probe a(r), b(r);
  a.ticket_out(outcome::routed, "cards", 0.9);
  b.ticket_out(outcome::routed, "cards", 0.7);
  a.state_restored(2, 100);
  b.state_restored(1, 5);
  const std::string t = render(r);
  EXPECT_EQ(sample(t, R"(triage_tickets_out_total{category="cards",outcome="routed"})"), 2) << t;
  EXPECT_EQ(sample(t, R"(triage_confidence_count{category="cards"})"), 2);
  EXPECT_EQ(sample(t, "triage_state_restores_total"), 3);
  EXPECT_EQ(sample(t, "triage_state_restored_records_total"), 105);
}

TEST(worker_probe, counters_alerts_divide_by_exist_at_zero) {
  prometheus::Registry r;
  worker_probe p(r);
  const std::string t = render(r);
  EXPECT_EQ(sample(t, "triage_transactions_aborted_total"), 0) << t;
  EXPECT_EQ(sample(t, "triage_rebalances_total"), 0);
  EXPECT_EQ(sample(t, "triage_assigned_partitions"), 0);
}

TEST(health, readiness_needs_every_declared_check) {
  health h;
  EXPECT_TRUE(h.ready()) << "no checks declared";
  h.declare({"model", "state"});
  EXPECT_FALSE(h.ready());
  h.set("model", true);
  EXPECT_FALSE(h.ready());
  EXPECT_NE(h.describe().find("state failing"), std::string::npos) << h.describe();
  h.set("state", true);
  EXPECT_TRUE(h.ready());
  h.declare({"model"});  // already passing: stays so
  EXPECT_TRUE(h.ready());
  h.set("state", false);  // a new assignment is being restored
  EXPECT_FALSE(h.ready());
  h.set("state", true);
  h.set_stopping();
  EXPECT_FALSE(h.ready());
  EXPECT_NE(h.describe().find("stopping"), std::string::npos);
}

TEST(health, liveness_fails_on_stall_or_death) {
  health h({.stall_limit_ms = 1000});
  const auto t0 = health::clock::now();
  EXPECT_TRUE(h.live_at(t0 + std::chrono::hours(1))) << "no heartbeat yet: loading";
  h.heartbeat_at(t0);
  EXPECT_TRUE(h.live_at(t0 + std::chrono::milliseconds(1000)));
  EXPECT_FALSE(h.live_at(t0 + std::chrono::milliseconds(1001)));
  h.heartbeat_at(t0 + std::chrono::milliseconds(1500));
  EXPECT_TRUE(h.live_at(t0 + std::chrono::milliseconds(2000)));
  h.set_alive(false);
  EXPECT_FALSE(h.live_at(t0 + std::chrono::milliseconds(1500)));
  EXPECT_FALSE(h.ready());
  health off({.stall_limit_ms = 0});
  off.heartbeat_at(t0);
  EXPECT_TRUE(off.live_at(t0 + std::chrono::hours(24)));
}

}  // namespace
}  // namespace triage::ops
