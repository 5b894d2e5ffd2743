#include "ops/metrics/probe.h"

#include <algorithm>
#include <string>

namespace triage::ops {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

const Histogram::BucketBoundaries& confidence_buckets() {
  static const Histogram::BucketBoundaries b = [] {
    Histogram::BucketBoundaries v;
    for (int i = 1; i <= 20; ++i) v.push_back(i / 20.0);  // 0.05 .. 1, printed exactly
    return v;
  }();
  return b;
}
const Histogram::BucketBoundaries kBatchTickets{1, 2, 4, 8, 16, 32, 64, 128, 256};
const Histogram::BucketBoundaries kBatchTokens{128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
const Histogram::BucketBoundaries kInferenceSeconds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                    0.5,   1,    2.5,   5,    10,  30};
const Histogram::BucketBoundaries kEndToEndSeconds{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                   2.5,  5,     10,   30,  60,   300};

std::string str(std::string_view s) { return std::string(s); }

}  // namespace

std::string_view outcome_label(outcome o) {
  switch (o) {
    case outcome::routed: return "routed";
    case outcome::escalated: return "escalated";
    case outcome::dead_lettered: return "dead_lettered";
  }
  return "unknown";
}

worker_probe::worker_probe(prometheus::Registry& r)
    : model_info_(BuildGauge()
                      .Name("triage_model_info")
                      .Help("Model, adapter, backend and device in use (value 1)")
                      .Register(r)),
      consumed_(BuildCounter()
                    .Name("triage_tickets_consumed_total")
                    .Help("Input records read, per input partition")
                    .Register(r)),
      out_(BuildCounter()
               .Name("triage_tickets_out_total")
               .Help("Tickets handled, by outcome (routed, escalated, dead_lettered) and category")
               .Register(r)),
      escalations_(BuildCounter()
                       .Name("triage_escalations_total")
                       .Help("Escalated tickets by reason")
                       .Register(r)),
      dead_letters_(BuildCounter()
                        .Name("triage_dead_letters_total")
                        .Help("Records sent to the dead-letter topic, by reason")
                        .Register(r)),
      confidence_(BuildHistogram()
                      .Name("triage_confidence")
                      .Help("Calibrated confidence of classified tickets, by category")
                      .Register(r)),
      batch_tickets_(BuildHistogram()
                         .Name("triage_batch_tickets")
                         .Help("Tickets per classified batch")
                         .Register(r)),
      batch_tokens_(BuildHistogram()
                        .Name("triage_batch_tokens")
                        .Help("Prompt tokens per classified batch")
                        .Register(r)),
      inference_(BuildHistogram()
                     .Name("triage_inference_seconds")
                     .Help("Backend wall time per batch, by backend and device")
                     .Register(r)),
      end_to_end_(BuildHistogram()
                      .Name("triage_end_to_end_seconds")
                      .Help("From the input record's timestamp to the commit of its output")
                      .Register(r)),
      batches_(BuildCounter().Name("triage_batches_total").Help("Batches classified").Register(r)),
      commits_(BuildCounter()
                   .Name("triage_commits_total")
                   .Help("Batches whose outputs and offsets were committed")
                   .Register(r)),
      aborts_(BuildCounter()
                  .Name("triage_transactions_aborted_total")
                  .Help("Transactions aborted (the batch is re-read)")
                  .Register(r)),
      lag_(BuildGauge()
               .Name("triage_consumer_lag")
               .Help("Records behind the high watermark, per assigned partition")
               .Register(r)),
      rebalances_(BuildCounter().Name("triage_rebalances_total").Help("Consumer group rebalances").Register(r)),
      assigned_(BuildGauge()
                    .Name("triage_assigned_partitions")
                    .Help("Input partitions assigned to this process")
                    .Register(r)),
      restores_(BuildCounter()
                    .Name("triage_state_restores_total")
                    .Help("Partitions whose state was restored from the changelog")
                    .Register(r)),
      restored_records_(BuildCounter()
                            .Name("triage_state_restored_records_total")
                            .Help("Changelog records read while restoring state")
                            .Register(r)),
      drift_(BuildGauge()
                 .Name("triage_drift_psi")
                 .Help("Population stability index against the baseline, by statistic and partition")
                 .Register(r)),
      drift_threshold_(BuildGauge()
                           .Name("triage_drift_psi_threshold")
                           .Help("Configured PSI alert threshold, by statistic")
                           .Register(r)),
      drift_alerts_(BuildCounter()
                        .Name("triage_drift_alerts_total")
                        .Help("Drift thresholds crossed, by statistic")
                        .Register(r)),
      escalation_rate_(BuildGauge()
                           .Name("triage_escalation_rate")
                           .Help("Share of tickets escalated in the state window, per partition")
                           .Register(r)),
      escalation_rate_threshold_(BuildGauge()
                                     .Name("triage_escalation_rate_threshold")
                                     .Help("Configured escalation-rate alert threshold")
                                     .Register(r)),
      queue_tickets_(BuildGauge()
                         .Name("triage_queue_tickets")
                         .Help("Tickets consumed and waiting for inference")
                         .Register(r)),
      queue_tokens_(BuildGauge()
                        .Name("triage_queue_tokens")
                        .Help("Estimated prompt tokens of the tickets waiting for inference")
                        .Register(r)),
      paused_(BuildGauge()
                  .Name("triage_paused_partitions")
                  .Help("Partitions paused because the inference queue is full")
                  .Register(r)),
      pauses_(BuildCounter()
                  .Name("triage_partition_pauses_total")
                  .Help("Times the worker paused its partitions on a full queue")
                  .Register(r)),
      state_memory_(BuildGauge()
                        .Name("triage_state_memory_bytes")
                        .Help("RocksDB memory of the state stores: memtables, block cache, table readers")
                        .Register(r)),
      shadow_(BuildCounter()
                  .Name("triage_shadow_decisions_total")
                  .Help("Tickets a shadow (candidate) adapter also decided, by agreement with the live "
                        "category and route")
                  .Register(r)) {
  tickets_hist_ = &batch_tickets_.Add({}, kBatchTickets);
  tokens_hist_ = &batch_tokens_.Add({}, kBatchTokens);
  e2e_hist_ = &end_to_end_.Add({}, kEndToEndSeconds);
  inference_now_ = &inference_.Add({{"backend", "unknown"}, {"device", "unknown"}}, kInferenceSeconds);
  assigned_.Add({}).Set(0);
  // Counters that alerts divide by exist from the start, at zero.
  aborts_.Add({});
  rebalances_.Add({});
  queue_tickets_.Add({});
  queue_tokens_.Add({});
  paused_.Add({});
  pauses_.Add({});
  state_memory_.Add({});
  batches_.Add({});
  commits_.Add({});
}

// A stopped worker's queue leaves the process totals.
worker_probe::~worker_probe() {
  queue(0, 0, 0, last_pauses_);
  state_memory(0);
}

prometheus::Counter& worker_probe::counter(prometheus::Family<prometheus::Counter>& f,
                                           const labels& l) {
  auto [it, fresh] = cache_.try_emplace({&f, l}, nullptr);
  if (fresh) it->second = &f.Add(l);
  return *static_cast<prometheus::Counter*>(it->second);
}

prometheus::Gauge& worker_probe::gauge(prometheus::Family<prometheus::Gauge>& f, const labels& l) {
  auto [it, fresh] = cache_.try_emplace({&f, l}, nullptr);
  if (fresh) it->second = &f.Add(l);
  return *static_cast<prometheus::Gauge*>(it->second);
}

void worker_probe::set_model(std::string_view model_version, std::string_view adapter_version,
                             std::string_view backend, std::string_view device) {
  if (info_) model_info_.Remove(info_);
  info_ = &model_info_.Add({{"model_version", str(model_version)},
                            {"adapter_version", str(adapter_version)},
                            {"backend", str(backend)},
                            {"device", str(device)}});
  info_->Set(1);
  inference_now_ = &inference_.Add({{"backend", str(backend)}, {"device", str(device)}},
                                   kInferenceSeconds);
}

void worker_probe::consumed(int32_t partition, uint64_t n) {
  auto it = consumed_by_partition_.find(partition);
  if (it == consumed_by_partition_.end())
    it = consumed_by_partition_.emplace(partition, &consumed_.Add({{"partition", std::to_string(partition)}}))
             .first;
  it->second->Increment(static_cast<double>(n));
}

void worker_probe::ticket_out(outcome kind, std::string_view category, double confidence) {
  if (kind == outcome::dead_lettered) category = "none";
  auto it = by_category_.find(category);
  if (it == by_category_.end()) it = by_category_.emplace(str(category), category_metrics{}).first;
  category_metrics& m = it->second;
  const auto k = static_cast<size_t>(kind);
  if (!m.out[k]) m.out[k] = &out_.Add({{"outcome", str(outcome_label(kind))}, {"category", it->first}});
  m.out[k]->Increment();
  if (kind == outcome::dead_lettered) return;
  if (!m.confidence) m.confidence = &confidence_.Add({{"category", it->first}}, confidence_buckets());
  m.confidence->Observe(confidence);
}

namespace {

prometheus::Counter& reason_counter(std::map<std::string, prometheus::Counter*, std::less<>>& cache,
                                    prometheus::Family<prometheus::Counter>& family, std::string_view reason) {
  auto it = cache.find(reason);
  if (it == cache.end()) it = cache.emplace(str(reason), &family.Add({{"reason", str(reason)}})).first;
  return *it->second;
}

}  // namespace

void worker_probe::escalated(std::string_view reason) {
  reason_counter(escalation_reasons_, escalations_, reason).Increment();
}

void worker_probe::shadow_decision(bool same_category, bool same_route) {
  counter(shadow_, {{"category", same_category ? "same" : "different"},
                    {"route", same_route ? "same" : "different"}})
      .Increment();
}

void worker_probe::dead_lettered(std::string_view reason) {
  reason_counter(dead_letter_reasons_, dead_letters_, reason).Increment();
}

void worker_probe::batch(uint64_t tickets, uint64_t tokens, double inference_seconds) {
  counter(batches_, {}).Increment();
  tickets_hist_->Observe(static_cast<double>(tickets));
  tokens_hist_->Observe(static_cast<double>(tokens));
  inference_now_->Observe(inference_seconds);
}

void worker_probe::committed(std::span<const double> end_to_end_seconds) {
  counter(commits_, {}).Increment();
  for (double s : end_to_end_seconds) e2e_hist_->Observe(s);
}

void worker_probe::transaction_aborted() { counter(aborts_, {}).Increment(); }

void worker_probe::lag(std::string_view topic, int32_t partition, int64_t records) {
  gauge(lag_, {{"topic", str(topic)}, {"partition", std::to_string(partition)}})
      .Set(static_cast<double>(records));
}

void worker_probe::rebalanced(uint64_t assigned) {
  counter(rebalances_, {}).Increment();
  gauge(assigned_, {}).Set(static_cast<double>(assigned));
}

void worker_probe::revoked(std::string_view topic, int32_t partition) {
  const std::string p = std::to_string(partition);
  for (auto it = cache_.begin(); it != cache_.end();) {
    const void* f = it->first.first;
    const labels& l = it->first.second;
    auto part = l.find("partition");
    auto top = l.find("topic");
    prometheus::Family<prometheus::Gauge>* family = f == &lag_               ? &lag_
                                                    : f == &drift_           ? &drift_
                                                    : f == &escalation_rate_ ? &escalation_rate_
                                                                             : nullptr;
    if (family && part != l.end() && part->second == p && (top == l.end() || top->second == topic)) {
      family->Remove(static_cast<prometheus::Gauge*>(it->second));
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
}

void worker_probe::state_restored(uint64_t partitions, uint64_t records) {
  counter(restores_, {}).Increment(static_cast<double>(partitions));
  counter(restored_records_, {}).Increment(static_cast<double>(records));
}

void worker_probe::drift(std::string_view statistic, int32_t partition, double value) {
  gauge(drift_, {{"statistic", str(statistic)}, {"partition", std::to_string(partition)}}).Set(value);
}

void worker_probe::drift_threshold(std::string_view statistic, double threshold) {
  gauge(drift_threshold_, {{"statistic", str(statistic)}}).Set(threshold);
}

void worker_probe::drift_alert(std::string_view statistic) {
  counter(drift_alerts_, {{"statistic", str(statistic)}}).Increment();
}

void worker_probe::escalation_rate(int32_t partition, double rate) {
  gauge(escalation_rate_, {{"partition", std::to_string(partition)}}).Set(rate);
}

void worker_probe::escalation_rate_threshold(double threshold) {
  gauge(escalation_rate_threshold_, {}).Set(threshold);
}

void worker_probe::queue(uint64_t tickets, uint64_t tokens, uint64_t paused_partitions,
                         uint64_t pauses) {
  auto move = [](prometheus::Gauge& g, uint64_t& last, uint64_t now) {
    g.Increment(static_cast<double>(now) - static_cast<double>(last));
    last = now;
  };
  move(gauge(queue_tickets_, {}), last_queue_tickets_, tickets);
  move(gauge(queue_tokens_, {}), last_queue_tokens_, tokens);
  move(gauge(paused_, {}), last_paused_, paused_partitions);
  if (pauses > last_pauses_) counter(pauses_, {}).Increment(static_cast<double>(pauses - last_pauses_));
  last_pauses_ = std::max(last_pauses_, pauses);
}

void worker_probe::state_memory(uint64_t bytes) {
  gauge(state_memory_, {}).Increment(static_cast<double>(bytes) - static_cast<double>(last_state_memory_));
  last_state_memory_ = bytes;
}

}  // namespace triage::ops
