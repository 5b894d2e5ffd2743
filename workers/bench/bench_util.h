// bench_util.h: pieces the benchmark programs under workers/bench/ share
// (pipeline_bench, latency_bench, soak_bench): unique names, percentiles,
// a ticket pool from a CSV, the backend's capacity, per-run topic names and
// a read_committed reader of the outputs. Benchmarks only, not a library.
//
//   auto pool = bench::load_tickets("data/banking77/train.csv", 400);
//   topology::config cfg;
//   bench::name_topics(cfg, bench::unique("latency"));
//   const double cap = bench::capacity(model, pool.value(), 32);   // tickets/s
//   auto reader = bench::output_reader(cfg, outputs);              // read_committed
//   double p99 = bench::percentile(latencies_ms, 0.99);
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <librdkafka/rdkafkacpp.h>

#include "base/csv.h"
#include "base/result.h"
#include "schemas/triage.pb.h"
#include "topology/config.h"
#include "workers/backend.h"
#include "workers/kafka_conf.h"

namespace triage::bench {

using clock_type = std::chrono::steady_clock;

// `p` plus a random suffix: topics, groups and transactional ids of one run.
inline std::string unique(const std::string& p) {
  return p + "-" + std::to_string(std::random_device{}() % 1000000000u);
}

// The p-quantile (0..1) of `v` (nearest rank); 0 for an empty `v`.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// Up to `n` tickets (0: all) from the `text` column of a CSV, in a fixed
// shuffle so that every run offers the same ones, with ids T-0, T-1, ...
inline result<std::vector<v1::TicketEvent>> load_tickets(const std::string& csv, size_t n) {
  auto table = read_csv(csv);
  if (!table) return table.error();
  auto text_col = table.value().column("text");
  if (!text_col) return text_col.error();
  std::vector<v1::TicketEvent> pool;
  for (const auto& row : table.value().rows) {
    v1::TicketEvent t;
    t.set_body(row[text_col.value()]);
    pool.push_back(std::move(t));
  }
  std::shuffle(pool.begin(), pool.end(), std::mt19937_64(7));
  if (n > 0) pool.resize(std::min(pool.size(), n));
  for (size_t i = 0; i < pool.size(); ++i) pool[i].set_id("T-" + std::to_string(i));
  return pool;
}

// Tickets/s of the backend alone, in batches like the worker's.
inline double capacity(workers::backend& model, const std::vector<v1::TicketEvent>& sample, int batch) {
  std::vector<const v1::TicketEvent*> ptrs;
  for (const auto& t : sample) ptrs.push_back(&t);
  model.classify(std::span(ptrs).first(std::min<size_t>(ptrs.size(), 8)));  // warm up
  const auto start = clock_type::now();
  for (size_t i = 0; i < ptrs.size(); i += static_cast<size_t>(batch)) {
    const size_t n = std::min<size_t>(static_cast<size_t>(batch), ptrs.size() - i);
    model.classify(std::span(ptrs).subspan(i, n));
  }
  return static_cast<double>(ptrs.size()) /
         std::chrono::duration<double>(clock_type::now() - start).count();
}

// Topics, consumer group and transactional ids of one run, under `prefix`.
inline void name_topics(topology::config& cfg, const std::string& prefix) {
  cfg.topics.tickets = prefix + ".tickets";
  cfg.topics.escalations = prefix + ".escalations";
  cfg.topics.dead_letter = prefix + ".dlq";
  cfg.topics.routed_prefix = prefix + ".routed.";
  cfg.worker.group_id = prefix;
  cfg.worker.transactional_id_prefix = prefix;
}

// A consumer of `topics` from the start, read_committed (only what the
// worker committed), subscribed; null if librdkafka refuses the settings.
inline std::unique_ptr<RdKafka::KafkaConsumer> output_reader(const topology::config& cfg,
                                                             const std::vector<std::string>& topics) {
  auto conf = workers::make_conf(cfg.kafka.settings, {{"group.id", unique("bench-reader")},
                                                      {"auto.offset.reset", "earliest"},
                                                      {"isolation.level", "read_committed"},
                                                      {"enable.auto.commit", "false"},
                                                      {"fetch.wait.max.ms", "10"}});
  if (!conf) return nullptr;
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> reader(RdKafka::KafkaConsumer::create(conf.value().get(), err));
  if (reader) reader->subscribe(topics);
  return reader;
}

}  // namespace triage::bench
