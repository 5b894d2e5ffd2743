// probe.h: the worker's Prometheus metrics, owned by one object so that
// counting never clutters the consume/classify/commit logic (Redpanda's
// `probe` pattern). The worker calls one method per event; the probe keeps
// the metric handles and the label sets.
//
//   prometheus::Registry registry;
//   triage::ops::worker_probe probe(registry);
//   probe.set_model("smollm2-135m-q4_1", "adapter-2026q4", "vulkan", "NVIDIA L4");
//   probe.consumed(3, 1);                               // partition 3, one record
//   probe.batch(32, 4100, 0.21);                        // tickets, tokens, inference s
//   probe.ticket_out(outcome::routed, "payments", 0.93);
//   probe.committed(3, {0.4, 0.6});                     // end-to-end s per ticket
//   probe.lag("tickets", 3, 120);
//
// Metric names (all prefixed triage_) are listed in ops/README.md; the alert
// rules and dashboard in ops/monitoring/ depend on them, so rename them there
// too. Threading: one probe per worker thread (its label caches are not
// locked); any number of probes may share a registry, and a scrape may run
// concurrently with any probe call. Several probes on one registry add up
// into the same series (their labels are the same), which is what a process
// with several worker instances wants.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace triage::ops {

enum class outcome { routed = 0, escalated = 1, dead_lettered = 2 };  // indexes, keep dense
std::string_view outcome_label(outcome o);  // "routed", "escalated", "dead_lettered"

class worker_probe {
 public:
  explicit worker_probe(prometheus::Registry& registry);
  worker_probe(const worker_probe&) = delete;
  worker_probe& operator=(const worker_probe&) = delete;
  ~worker_probe();

  // triage_model_info{model_version,adapter_version,backend,device} 1; a new
  // call replaces the previous series (adapter promoted, backend fell back),
  // and labels the inference-latency histogram from then on.
  void set_model(std::string_view model_version, std::string_view adapter_version,
                 std::string_view backend, std::string_view device);

  // n input records read from `partition` (before decoding).
  void consumed(int32_t partition, uint64_t n = 1);
  // One ticket's fate. `category` is ignored for dead_lettered; confidence
  // goes into the histogram for routed and escalated tickets.
  void ticket_out(outcome kind, std::string_view category, double confidence);
  // Why a ticket was escalated ("low_confidence", "always_escalate", ...).
  void escalated(std::string_view reason);
  // Why a record went to the dead-letter topic ("bad_protobuf", "too_large", ...).
  void dead_lettered(std::string_view reason);
  // One classified batch: its size and the backend's wall time for it.
  void batch(uint64_t tickets, uint64_t tokens, double inference_seconds);
  // A batch's transaction (or offset commit) succeeded: the end-to-end latency
  // of each of its tickets, from the record's timestamp to now, in seconds.
  void committed(std::span<const double> end_to_end_seconds);
  void transaction_aborted();

  // Consumer lag of an assigned partition (high watermark minus position).
  void lag(std::string_view topic, int32_t partition, int64_t records);
  // A rebalance event; `assigned` is the partition count after it.
  void rebalanced(uint64_t assigned);
  // A revoked partition's gauges (lag, drift, escalation rate) go away, so a
  // stale value cannot keep an alert firing on a worker that no longer owns it.
  void revoked(std::string_view topic, int32_t partition);
  void state_restored(uint64_t partitions, uint64_t records);

  // Drift statistics from state/ ("psi_category", "psi_confidence",
  // "psi_length") per partition, with the configured alert threshold, so the
  // Prometheus rule compares against the same number as the worker.
  void drift(std::string_view statistic, int32_t partition, double value);
  void drift_threshold(std::string_view statistic, double threshold);
  void drift_alert(std::string_view statistic);
  // The partition's escalation rate as state/ tracks it (share of tickets
  // escalated in the current window), and the configured alert threshold.
  void escalation_rate(int32_t partition, double rate);
  void escalation_rate_threshold(double threshold);
  // The worker's in-memory queue between the Kafka thread and inference:
  // tickets and estimated tokens waiting, partitions paused because it is
  // full, and the running count of pauses. Reported as changes since this
  // probe's last call, so the instances of one process add up.
  void queue(uint64_t tickets, uint64_t tokens, uint64_t paused_partitions, uint64_t pauses);
  // RocksDB memory of the worker's state store (state::store::memory():
  // memtables, block cache, table readers), reported as the change since
  // this probe's last call, so the instances of one process add up.
  void state_memory(uint64_t bytes);
  // Shadow mode (workers/shadow.h): one ticket the candidate adapter also
  // decided; whether it chose the live category and the live route.
  void shadow_decision(bool same_category, bool same_route);

 private:
  using labels = std::map<std::string, std::string>;
  prometheus::Counter& counter(prometheus::Family<prometheus::Counter>& f, const labels& l);
  prometheus::Gauge& gauge(prometheus::Family<prometheus::Gauge>& f, const labels& l);

  prometheus::Family<prometheus::Gauge>& model_info_;
  prometheus::Family<prometheus::Counter>& consumed_;
  prometheus::Family<prometheus::Counter>& out_;
  prometheus::Family<prometheus::Counter>& escalations_;
  prometheus::Family<prometheus::Counter>& dead_letters_;
  prometheus::Family<prometheus::Histogram>& confidence_;
  prometheus::Family<prometheus::Histogram>& batch_tickets_;
  prometheus::Family<prometheus::Histogram>& batch_tokens_;
  prometheus::Family<prometheus::Histogram>& inference_;
  prometheus::Family<prometheus::Histogram>& end_to_end_;
  prometheus::Family<prometheus::Counter>& batches_;
  prometheus::Family<prometheus::Counter>& commits_;
  prometheus::Family<prometheus::Counter>& aborts_;
  prometheus::Family<prometheus::Gauge>& lag_;
  prometheus::Family<prometheus::Counter>& rebalances_;
  prometheus::Family<prometheus::Gauge>& assigned_;
  prometheus::Family<prometheus::Counter>& restores_;
  prometheus::Family<prometheus::Counter>& restored_records_;
  prometheus::Family<prometheus::Gauge>& drift_;
  prometheus::Family<prometheus::Gauge>& drift_threshold_;
  prometheus::Family<prometheus::Counter>& drift_alerts_;
  prometheus::Family<prometheus::Gauge>& escalation_rate_;
  prometheus::Family<prometheus::Gauge>& escalation_rate_threshold_;
  prometheus::Family<prometheus::Gauge>& queue_tickets_;
  prometheus::Family<prometheus::Gauge>& queue_tokens_;
  prometheus::Family<prometheus::Gauge>& paused_;
  prometheus::Family<prometheus::Counter>& pauses_;
  prometheus::Family<prometheus::Gauge>& state_memory_;
  prometheus::Family<prometheus::Counter>& shadow_;
  // What queue() and state_memory() last reported, to apply differences.
  uint64_t last_queue_tickets_ = 0, last_queue_tokens_ = 0, last_paused_ = 0, last_pauses_ = 0;
  uint64_t last_state_memory_ = 0;

  // Label set -> metric, per family, so hot-path calls skip the family's
  // hash-and-lock lookup after the first time.
  std::map<std::pair<const void*, labels>, void*> cache_;
  prometheus::Gauge* info_ = nullptr;
  prometheus::Histogram* inference_now_ = nullptr;
  prometheus::Histogram* tickets_hist_ = nullptr;
  prometheus::Histogram* tokens_hist_ = nullptr;
  prometheus::Histogram* e2e_hist_ = nullptr;
  // Per-ticket paths look up by string_view without building label sets.
  struct category_metrics {
    prometheus::Counter* out[3] = {nullptr, nullptr, nullptr};  // by outcome
    prometheus::Histogram* confidence = nullptr;
  };
  std::map<std::string, category_metrics, std::less<>> by_category_;
  std::map<std::string, prometheus::Counter*, std::less<>> escalation_reasons_;
  std::map<std::string, prometheus::Counter*, std::less<>> dead_letter_reasons_;
  std::map<int32_t, prometheus::Counter*> consumed_by_partition_;
};

}  // namespace triage::ops
