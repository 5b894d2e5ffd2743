// worker.h: the Kafka consumer loop. Joins the consumer group, queues what it
// reads (bounded, pausing partitions when full), collects batches (by ticket
// count, token budget and maximum wait), classifies them on an inference
// thread, and commits outputs and input offsets together.
//
//   kafka_worker::options o{.worker_id = "host-1"};
//   auto w = kafka_worker::create(cfg, backend, o);
//   if (!w) return fail(w.error().message);
//   std::atomic<bool> stop{false};              // set from SIGTERM
//   auto done = w.value()->run(stop);           // returns when stopped or fenced
//
// Threads: run() is the Kafka thread. It alone calls the consumer and the
// producer (consume, pause, resume, rebalance callbacks, transactions) and
// the state store, so none of those is shared. It keeps calling consume()
// (at least every 100 ms) while a batch is being classified, so a long batch
// never makes the worker miss max.poll.interval.ms and leave the group. The
// inference thread (owned by the worker) runs the processor (decode,
// classify, route) on one batch at a time and hands the outputs back; a
// batch is committed by the Kafka thread before the next one is handed over.
//
// Backpressure (worker.queue_max_tickets, worker.queue_max_tokens): records
// read wait in a bounded in-memory queue for the inference thread. When the
// queue reaches either limit, every assigned partition is paused (librdkafka
// drops what it had prefetched for them and, on resume, fetches again from
// the record after the last one the worker read), so neither the queue nor
// librdkafka's prefetch grows while the backend is slower than the stream;
// consume() still runs, so the group membership stays alive. Once the queue
// has drained to half of both limits, the paused partitions are resumed.
// backpressure() reports the queue depth and the paused partitions, from any
// thread. Offsets never go backwards within an assignment: a record at or
// below one already queued for its partition is skipped and counted
// (worker_stats::records_reread). librdkafka 2.0 does deliver such records
// after a resume: backpressure_test caught a partition with no committed
// offset (start "earliest") being read again from offset 0 after offset 26,
// a stale start position reused on resume like librdkafka issue #4686.
//
// Delivery (worker.delivery):
// - exactly_once: each batch's outputs and the next input offsets go into
//   one Kafka transaction. The transactional id is stable per worker id and
//   instance, so a restarted worker fences the zombie it replaces. A failed
//   transaction is aborted and the batch goes back to the front of the queue
//   (it is still in memory) to be processed and committed again.
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
// assignment. The revocation runs on the Kafka thread, never inside a
// commit, so a batch is either committed before it or abandoned: records
// queued for the revoked partitions are dropped, a batch still being
// classified is discarded when it comes back (nothing of it is produced or
// committed), and paused partitions are resumed and forgotten, so partitions
// assigned later start resumed. The partitions' new owner (maybe this worker
// again) reads the dropped records from the committed offsets.
//
// Shutdown (stop set, e.g. on SIGTERM), bounded by worker.shutdown_timeout_ms:
// the queue is dropped (uncommitted; the next owner reads it again); a batch
// being classified gets until half of the timeout (at most 5 s before the
// end) to finish, then its transaction gets what is left of the timeout to
// commit, or is aborted; a batch that does not finish in time is abandoned
// (no transaction was open for it). Then the consumer leaves the group.
// run() returns without waiting for a backend call that does not return;
// the destructor waits for it (a backend call cannot be interrupted).
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
  // Backpressure and shutdown.
  uint64_t pauses = 0;                  // times the partitions were paused (queue full)
  uint64_t resumes = 0;                 // times they were resumed (queue drained)
  uint64_t queue_peak = 0;              // most tickets queued at once
  uint64_t batches_abandoned = 0;       // classified but not committed (revoked, stopped)
  uint64_t records_reread = 0;          // delivered again by librdkafka, skipped
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

  // Written by run()'s thread; read it after run() returned.
  const worker_stats& stats() const;

  // The queue and the paused partitions now; safe from any thread (metrics,
  // tests) while run() is going.
  struct backpressure_state {
    uint64_t queued_tickets = 0;
    uint64_t queued_tokens = 0;     // estimated: bytes / 4 + 1 per ticket
    uint64_t paused_partitions = 0;
    uint64_t pauses = 0;            // times the partitions were paused so far
    bool classifying = false;       // a batch is with the inference thread
  };
  backpressure_state backpressure() const;

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
