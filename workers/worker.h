// worker.h: the Kafka consumer loop. Joins the consumer group, collects
// batches (by ticket count, token budget and maximum wait), hands them to the
// processor, and commits outputs and input offsets together.
//
//   kafka_worker::options o{.worker_id = "host-1"};
//   auto w = kafka_worker::create(cfg, backend, o);
//   if (!w) return fail(w.error().message);
//   std::atomic<bool> stop{false};              // set from SIGTERM
//   auto done = w.value()->run(stop);           // returns when stopped or fenced
//
// Delivery (worker.delivery):
// - exactly_once: each batch's outputs and the next input offsets go into
//   one Kafka transaction. The transactional id is stable per worker id and
//   instance, so a restarted worker fences the zombie it replaces. A failed
//   transaction is aborted and the batch re-read from the committed offsets.
// - at_least_once: idempotent producer; offsets are committed once every
//   output of the batch is acknowledged.
//
// Rebalances: the eager assignor revokes every partition before a new
// assignment; a batch in flight when that happens is abandoned (its
// transaction aborted, nothing committed) and the partitions' new owner
// re-reads it from the committed offsets. Never half-committed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "base/result.h"
#include "topology/config.h"
#include "workers/backend.h"
#include "workers/processor.h"

namespace triage::workers {

struct worker_stats {
  uint64_t consumed = 0;
  uint64_t routed = 0;
  uint64_t escalated = 0;
  uint64_t dead_lettered = 0;
  uint64_t batches = 0;
  uint64_t transactions_aborted = 0;
  uint64_t rebalances = 0;
  std::map<std::string, uint64_t> by_topic;  // outputs per output topic
  std::map<std::string, uint64_t> by_reason; // escalation and dead-letter reasons
  // When the first record arrived and the last batch was committed: the
  // span that throughput is measured over (the group join excluded).
  std::chrono::steady_clock::time_point first_record{};
  std::chrono::steady_clock::time_point last_commit{};
};

class kafka_worker {
 public:
  struct options {
    // Identifies this worker process in transactional ids and logs; must be
    // stable across restarts of the same worker. Default: "worker".
    std::string worker_id = "worker";
    // Instance number within the process. Default: 0.
    int instance = 0;
    // Stop after this many input records are committed (tests, demo); 0 runs
    // until stopped. Default: 0.
    uint64_t max_records = 0;
    // Stop once no record arrived for this long after the first one
    // (demo, replay); 0 never. Default: 0.
    int idle_exit_ms = 0;
  };

  static result<std::unique_ptr<kafka_worker>> create(const topology::config& cfg, backend& model,
                                                      const options& opts);
  ~kafka_worker();

  // Runs until `stop` is set, max_records or idle_exit_ms is reached, or a
  // fatal error (fenced by a newer instance, an unrecoverable broker error).
  // On stop it finishes or aborts the transaction in flight within
  // worker.shutdown_timeout_ms and leaves the group.
  result<void> run(const std::atomic<bool>& stop);

  const worker_stats& stats() const;

 private:
  struct impl;
  explicit kafka_worker(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace triage::workers
