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
// State (state.enabled, state/README.md): the worker keeps counters, drift
// statistics, decisions and retraining examples per input partition in a
// RocksDB store at <state.directory>/<worker_id>-<instance>. Each batch's
// state changes go to the compacted changelog topic (partition = input
// partition) in the batch's transaction, and into the local store only once
// it has committed. On assignment, a partition whose local state does not
// end at the group's committed offset (another worker had it, the disk was
// lost, a crash came between commit and local write) is wiped and restored
// from the changelog (read_committed, to its end) before it is processed.
// A store that cannot be opened or restored stops the worker: it never
// processes a partition without its state.
// at_least_once: changelog records are produced and acknowledged with the
// outputs, before the offsets are committed, so the state counts every
// output the worker produced, a batch re-read after a failed commit twice,
// as its outputs are.
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
#include "state/updater.h"
#include "topology/config.h"
#include "workers/backend.h"
#include "workers/processor.h"

namespace triage::ops {
class worker_probe;
class health;
}  // namespace triage::ops

namespace triage::workers {

struct worker_stats {
  uint64_t consumed = 0;
  uint64_t routed = 0;
  uint64_t escalated = 0;
  uint64_t dead_lettered = 0;
  uint64_t batches = 0;
  uint64_t transactions_aborted = 0;
  uint64_t rebalances = 0;
  uint64_t state_restores = 0;          // partitions restored from the changelog
  uint64_t state_records_restored = 0;  // changelog records read doing so
  uint64_t changelog_records = 0;       // produced (committed batches only)
  uint64_t drift_alerts = 0;            // thresholds crossed (each logged once)
  std::map<std::string, uint64_t> alerts;  // "psi_category 00003 2026Q4" -> 1
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
    // Metrics and health (ops/metrics): the worker reports each event to the
    // probe and its liveness and readiness to health. Not owned; both must
    // outlive the worker. Null: not reported. Default: null.
    ops::worker_probe* probe = nullptr;
    ops::health* health = nullptr;
    // The readiness check this instance reports its partitions' state on.
    // Default: "state".
    std::string health_check = "state";
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

// What a batch's outputs say about each ticket, for the state store (one
// fact per output, in order; the ticket id, urgency and length come from
// the serialized RoutedTicket or Escalation).
std::vector<state::ticket_fact> state_facts(const std::vector<input_record>& batch,
                                            const std::vector<output_record>& outputs, bool keep_text);

}  // namespace triage::workers
