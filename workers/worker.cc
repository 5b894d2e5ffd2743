#include "workers/worker.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include "ops/logging.h"
#include "ops/metrics/health.h"
#include "ops/metrics/probe.h"
#include "state/changelog.h"
#include "state/drift.h"
#include "state/report.h"
#include "state/store.h"
#include "state/updater.h"
#include "workers/kafka_conf.h"

namespace triage::workers {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

ops::outcome probe_outcome(outcome o) {
  switch (o) {
    case outcome::routed: return ops::outcome::routed;
    case outcome::escalated: return ops::outcome::escalated;
    case outcome::dead_lettered: return ops::outcome::dead_lettered;
  }
  return ops::outcome::dead_lettered;
}

// Owns a vector of TopicPartition pointers, as the C++ API hands them out.
struct partition_list {
  std::vector<RdKafka::TopicPartition*> items;
  partition_list() = default;
  partition_list(const partition_list&) = delete;
  partition_list& operator=(const partition_list&) = delete;
  ~partition_list() { RdKafka::TopicPartition::destroy(items); }
};

// For each (topic, partition) in the batch: the first offset read and the
// next offset to commit.
struct batch_offsets {
  std::map<std::pair<std::string, int32_t>, std::pair<int64_t, int64_t>> ranges;

  explicit batch_offsets(const std::vector<input_record>& batch) {
    for (const auto& r : batch) {
      auto [it, added] = ranges.try_emplace({r.topic, r.partition}, r.offset, r.offset + 1);
      if (!added) {
        it->second.first = std::min(it->second.first, r.offset);
        it->second.second = std::max(it->second.second, r.offset + 1);
      }
    }
  }
  void next_offsets(partition_list& out) const {
    for (const auto& [tp, range] : ranges) {
      out.items.push_back(RdKafka::TopicPartition::create(tp.first, tp.second, range.second));
    }
  }
};

// The batching estimate of a record's prompt tokens; the classifier
// truncates precisely.
int estimated_tokens(const input_record& r) { return static_cast<int>(r.value.size() / 4 + 1); }

using partition_key = std::pair<std::string, int32_t>;

}  // namespace

struct kafka_worker::impl final : public RdKafka::RebalanceCb, public RdKafka::DeliveryReportCb {
  impl(const topology::config& c, backend& m, const options& o)
      : cfg(c), model(m), opts(o), proc(c, m),
        transactional(c.worker.delivery == topology::delivery_mode::exactly_once),
        log_name(o.worker_id + "-" + std::to_string(o.instance)) {}

  // Waits for the inference thread, which may still be inside the backend
  // when run() gave up on its batch.
  ~impl() {
    {
      std::lock_guard lock(job_mutex);
      quit = true;
    }
    job_cv.notify_all();
    if (inference.joinable()) inference.join();
  }

  const topology::config& cfg;
  backend& model;
  options opts;
  processor proc;
  bool transactional;
  std::string txn_id;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer;
  std::unique_ptr<RdKafka::Producer> producer;
  worker_stats stats;
  // Bumped by every revocation (the rebalance callback runs inside
  // consume(), on the Kafka thread): a batch handed to the inference thread
  // under an older generation is discarded when it comes back.
  uint64_t generation = 0;
  int delivery_errors = 0;
  std::string last_delivery_error;
  // State (null when state.enabled is off).
  std::unique_ptr<state::store> store;
  std::unique_ptr<state::updater> updater;
  // Set when the state of an assigned partition could not be restored: the
  // worker stops rather than process it without its state.
  std::optional<error> state_failure;
  // Partitions and quarters updated since the last drift check.
  std::set<std::pair<int32_t, std::string>> drift_touched;
  uint64_t since_drift_check = 0;
  clock::time_point last_lag_report{};
  clock::time_point last_heap_trim = clock::now();

  // Backpressure: records read and not yet handed to the inference thread,
  // oldest first (per partition in offset order). Kafka thread only.
  struct queued {
    input_record record;
    int tokens = 0;
    clock::time_point at;  // when it was queued: the batch's maximum wait counts from here
  };
  std::deque<queued> queue;
  int64_t queue_tokens = 0;
  std::set<partition_key> assigned;
  std::set<partition_key> paused;
  // Per assigned partition: the offset after the last record queued. A
  // record below it was read already in this assignment (librdkafka 2.0 can
  // deliver records again after a pause/resume; see worker.h) and is
  // skipped, so that offsets never go backwards within an assignment.
  std::map<partition_key, int64_t> next_offset;
  // Copies for backpressure(), which other threads call.
  std::atomic<uint64_t> queued_now{0}, queued_tokens_now{0}, paused_now{0}, pauses_now{0};

  // The inference thread and the one batch it works on. `current` is set by
  // the Kafka thread when idle, and taken back by it once `done`.
  struct job {
    std::vector<input_record> batch;
    uint64_t generation = 0;
    uint64_t tokens = 0;
    bool started = false;  // under job_mutex
    bool done = false;     // under job_mutex
    std::vector<output_record> outputs;
    std::string error;     // the backend threw: the worker stops
    double seconds = 0;
  };
  mutable std::mutex job_mutex;
  std::condition_variable job_cv;
  std::unique_ptr<job> current;
  bool quit = false;  // under job_mutex
  std::thread inference;
  // "w1-0": the worker field of every log line from this worker's threads.
  const std::string log_name;

  result<void> open_state() {
    const auto& st = cfg.state;
    const std::string dir = st.directory + "/" + opts.worker_id + "-" + std::to_string(opts.instance);
    // No WAL: the changelog is the durable copy (state/store.h).
    auto s = state::store::open(dir, {.no_wal = true,
                                      .memory_budget_mb = st.memory_budget_mb,
                                      .decisions_retention_days = st.decisions_retention_days});
    if (!s) return make_error(errc::client_failed, "state store: " + s.error().message);
    store = std::move(s.value());
    updater = std::make_unique<state::updater>(
        *store, state::updater_options{.keep_ticket_text = st.keep_ticket_text,
                                       .example_max_confidence = st.example_max_confidence,
                                       .baseline_tickets = st.baseline_tickets});
    auto n = state::partition_count(cfg.kafka.settings, cfg.topics.tickets);
    if (!n) {
      return make_error(errc::client_failed, "state: the changelog is partitioned like the input topic '" +
                                                 cfg.topics.tickets + "', which must exist: " + n.error().message);
    }
    if (auto ok = state::ensure_changelog_topic(cfg.kafka.settings, st.changelog_topic, n.value(),
                                                cfg.topics.replication_factor);
        !ok) {
      return make_error(errc::client_failed, "state: " + ok.error().message);
    }
    spdlog::info("worker {}-{}: state in {}, changelog {}", opts.worker_id, opts.instance, dir,
                 st.changelog_topic);
    return success();
  }

  // Before the assigned partitions are read: each one whose local state does
  // not end exactly at the committed input offset is restored.
  result<void> restore_state(RdKafka::KafkaConsumer* c, std::vector<RdKafka::TopicPartition*>& parts) {
    std::vector<RdKafka::TopicPartition*> committed;
    for (const auto* p : parts) committed.push_back(RdKafka::TopicPartition::create(p->topic(), p->partition()));
    const auto rc = c->committed(committed, cfg.state.restore_timeout_ms);
    std::map<int32_t, std::optional<int64_t>> want;
    for (const auto* p : committed) {
      want[p->partition()] = p->offset() >= 0 ? std::optional<int64_t>(p->offset()) : std::nullopt;
    }
    RdKafka::TopicPartition::destroy(committed);
    if (rc != RdKafka::ERR_NO_ERROR) {
      return make_error(errc::client_failed, "state: committed offsets of " + cfg.topics.tickets + ": " +
                                                 RdKafka::err2str(rc));
    }
    std::vector<int32_t> stale;
    for (const auto& [partition, offset] : want) {
      auto local = store->applied_offset(partition);
      if (!local) return make_error(errc::client_failed, "state: " + local.error().message);
      if (local.value() != offset) stale.push_back(partition);
    }
    if (stale.empty()) return success();
    auto r = state::restore(*store, cfg.kafka.settings, cfg.state.changelog_topic, stale,
                            cfg.state.restore_timeout_ms);
    if (!r) return make_error(errc::client_failed, "state: restore: " + r.error().message);
    updater->forget();
    stats.state_restores += stale.size();
    stats.state_records_restored += static_cast<uint64_t>(r.value().records);
    if (opts.probe) opts.probe->state_restored(stale.size(), static_cast<uint64_t>(r.value().records));
    for (int32_t partition : stale) {
      auto local = store->applied_offset(partition);
      if (!local) return make_error(errc::client_failed, "state: " + local.error().message);
      const auto& offset = want[partition];
      if (local.value() == offset) continue;
      if (!local.value()) {
        // Offsets committed before state was kept: it starts here.
        spdlog::warn("worker {}-{}: {}/{}: no state in the changelog; state starts at offset {}",
                     opts.worker_id, opts.instance, cfg.topics.tickets, partition, offset ? *offset : -1);
        continue;
      }
      return make_error(errc::client_failed,
                        "state: " + cfg.topics.tickets + "/" + std::to_string(partition) +
                            ": the changelog '" + cfg.state.changelog_topic + "' ends at input offset " +
                            std::to_string(*local.value()) + " but the group committed " +
                            (offset ? std::to_string(*offset) : std::string("nothing")));
    }
    spdlog::info("worker {}-{}: restored the state of {} partition(s) from {} ({} records)", opts.worker_id,
                 opts.instance, stale.size(), cfg.state.changelog_topic, r.value().records);
    return success();
  }

  // Every few thousand tickets: drift and escalation rate of the partitions
  // and quarters touched, against the thresholds; each crossing logged once.
  void check_drift() {
    const auto& st = cfg.state;
    for (const auto& [partition, quarter] : drift_touched) {
      auto alert = [&](const std::string& what, double value, double limit) {
        if (value <= limit) return;
        const std::string key = what + " " + state::partition_prefix(partition).substr(0, 5) + " " + quarter;
        if (stats.alerts[key]++ > 0) return;
        ++stats.drift_alerts;
        if (opts.probe) opts.probe->drift_alert(what);
        spdlog::warn("worker {}-{}: drift alert: {}/{} quarter {}: {} {:.4f} above {:.4f}", opts.worker_id,
                     opts.instance, cfg.topics.tickets, partition, quarter, what, value, limit);
      };
      auto d = state::drift_of(*store, quarter, partition);
      if (d && opts.probe) {
        opts.probe->drift("psi_category", partition, d.value().psi_category);
        opts.probe->drift("psi_confidence", partition, d.value().psi_confidence);
        opts.probe->drift("psi_length", partition, d.value().psi_length);
        opts.probe->drift("psi_unknown", partition, d.value().psi_unknown);
      }
      if (d && d.value().tickets >= st.drift_min_tickets) {
        alert("psi_category", d.value().psi_category, st.psi_category_alert);
        alert("psi_confidence", d.value().psi_confidence, st.psi_confidence_alert);
        alert("psi_length", d.value().psi_length, st.psi_length_alert);
        alert("psi_unknown", d.value().psi_unknown, st.psi_unknown_alert);
      }
      auto sum = state::summarize(*store, quarter, partition);
      if (sum) {
        int64_t tickets = 0, escalated = 0;
        for (const auto& c : sum.value().categories) {
          tickets += c.tickets();
          escalated += c.escalated;
        }
        if (opts.probe && tickets > 0) {
          opts.probe->escalation_rate(partition, static_cast<double>(escalated) / static_cast<double>(tickets));
        }
        if (tickets >= st.drift_min_tickets) {
          alert("escalation_rate", static_cast<double>(escalated) / static_cast<double>(tickets),
                st.escalation_rate_alert);
        }
      }
    }
    drift_touched.clear();
    since_drift_check = 0;
  }

  void rebalance_cb(RdKafka::KafkaConsumer* c, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& parts) override {
    ++stats.rebalances;
    std::string names;
    for (const auto* p : parts) {
      names += (names.empty() ? "" : ",") + p->topic() + "/" + std::to_string(p->partition());
    }
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      spdlog::info("worker {}-{}: assigned {}", opts.worker_id, opts.instance, names);
      if (opts.health) opts.health->set(opts.health_check, false);
      if (store && !state_failure) {
        if (auto ok = restore_state(c, parts); !ok) {
          spdlog::error("worker {}-{}: {}", opts.worker_id, opts.instance, ok.error().message);
          state_failure = ok.error();
          return;  // not assigned: run() stops before reading anything
        }
      }
      c->assign(parts);
      // New partitions start resumed (revoked ones were resumed as they
      // went); the eager revocation emptied the queue, so they are paused
      // again only once it fills.
      for (const auto* p : parts) assigned.insert({p->topic(), p->partition()});
      if (opts.health) opts.health->set(opts.health_check, true);
      if (opts.probe) opts.probe->rebalanced(parts.size());
    } else {
      spdlog::info("worker {}-{}: revoked {}", opts.worker_id, opts.instance, names);
      if (opts.probe) {
        for (const auto* p : parts) opts.probe->revoked(p->topic(), p->partition());
        opts.probe->rebalanced(0);
      }
      // No commit is running (this is the Kafka thread, inside consume()):
      // the batch with the inference thread, if any, is abandoned, and the
      // queued records of these partitions are dropped; the new owner reads
      // them from the committed offsets.
      ++generation;
      std::set<partition_key> gone;
      for (const auto* p : parts) gone.insert({p->topic(), p->partition()});
      drop_queued([&](const input_record& r) { return gone.count({r.topic, r.partition}) > 0; });
      // Paused partitions are resumed before they go, so that whichever
      // member gets them next (this one included) starts reading them.
      partition_list resume;
      for (const auto& tp : gone) {
        if (paused.erase(tp) > 0) resume.items.push_back(RdKafka::TopicPartition::create(tp.first, tp.second));
        assigned.erase(tp);
        next_offset.erase(tp);
      }
      if (!resume.items.empty()) c->resume(resume.items);
      publish();
      c->unassign();
    }
  }

  // --- Backpressure: the queue and the paused partitions (Kafka thread). ---

  void publish() {
    queued_now = queue.size();
    queued_tokens_now = static_cast<uint64_t>(queue_tokens);
    paused_now = paused.size();
    pauses_now = stats.pauses;
    stats.queue_peak = std::max<uint64_t>(stats.queue_peak, queue.size());
  }

  template <class Pred>
  void drop_queued(Pred pred) {
    for (auto it = queue.begin(); it != queue.end();) {
      if (pred(it->record)) {
        queue_tokens -= it->tokens;
        it = queue.erase(it);
      } else {
        ++it;
      }
    }
  }

  bool queue_full() const {
    return static_cast<int64_t>(queue.size()) >= cfg.worker.queue_max_tickets ||
           queue_tokens >= cfg.worker.queue_max_tokens;
  }
  bool queue_drained() const {
    return static_cast<int64_t>(queue.size()) <= cfg.worker.queue_max_tickets / 2 &&
           queue_tokens <= cfg.worker.queue_max_tokens / 2;
  }

  void enqueue(input_record r, clock::time_point at) {
    const int tokens = estimated_tokens(r);
    queue_tokens += tokens;
    queue.push_back({std::move(r), tokens, at});
  }

  // Pauses every assigned partition not paused yet. librdkafka drops what it
  // prefetched for them and later resumes after the last record consume()
  // returned, so nothing is skipped or read twice.
  void pause_all() {
    partition_list parts;
    for (const auto& tp : assigned) {
      if (!paused.count(tp)) parts.items.push_back(RdKafka::TopicPartition::create(tp.first, tp.second));
    }
    if (parts.items.empty()) return;
    const auto rc = consumer->pause(parts.items);
    size_t n = 0;
    for (const auto* p : parts.items) {
      if (rc == RdKafka::ERR_NO_ERROR && p->err() == RdKafka::ERR_NO_ERROR) {
        paused.insert({p->topic(), p->partition()});
        ++n;
      } else {
        spdlog::warn("worker {}-{}: pause {}/{}: {}", opts.worker_id, opts.instance, p->topic(), p->partition(),
                     RdKafka::err2str(rc != RdKafka::ERR_NO_ERROR ? rc : p->err()));
      }
    }
    if (n == 0) return;
    ++stats.pauses;
    spdlog::debug("worker {}-{}: queue full ({} tickets, ~{} tokens): paused {} partition(s)", opts.worker_id,
                  opts.instance, queue.size(), queue_tokens, n);
  }

  void resume_all() {
    if (paused.empty()) return;
    partition_list parts;
    for (const auto& tp : paused) parts.items.push_back(RdKafka::TopicPartition::create(tp.first, tp.second));
    const auto rc = consumer->resume(parts.items);
    if (rc != RdKafka::ERR_NO_ERROR) {
      spdlog::warn("worker {}-{}: resume: {}", opts.worker_id, opts.instance, RdKafka::err2str(rc));
      return;  // tried again on the next turn
    }
    for (const auto* p : parts.items) {
      if (p->err() == RdKafka::ERR_NO_ERROR) paused.erase({p->topic(), p->partition()});
    }
    ++stats.resumes;
    spdlog::debug("worker {}-{}: queue drained ({} tickets): resumed, {} still paused", opts.worker_id,
                  opts.instance, queue.size(), paused.size());
  }

  // After a push or a put-back: pause when full.
  void check_queue() {
    if (queue_full()) pause_all();
    publish();
  }

  // A batch's records back at the front of the queue, in their order, due at
  // once: its transaction failed, and the records are still in memory (no
  // seek, so no record is read twice into the queue or skipped).
  void put_back(std::vector<input_record>& batch) {
    const auto due = clock::now() - std::chrono::milliseconds(cfg.worker.batch_max_wait_ms);
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      const int tokens = estimated_tokens(*it);
      queue_tokens += tokens;
      queue.push_front({std::move(*it), tokens, due});
    }
    batch.clear();
    check_queue();
  }

  void dr_cb(RdKafka::Message& m) override {
    if (m.err() != RdKafka::ERR_NO_ERROR) {
      ++delivery_errors;
      last_delivery_error = m.errstr();
    }
  }

  result<void> connect() {
    const auto& w = cfg.worker;
    // The state first: a worker that cannot have its state does not join.
    if (cfg.state.enabled) {
      if (auto ok = open_state(); !ok) return ok;
    }
    auto cconf = make_conf(cfg.kafka.settings,
                           {{"group.id", w.group_id},
                            {"enable.auto.commit", "false"},
                            {"enable.auto.offset.store", "false"},
                            {"auto.offset.reset", "earliest"},
                            {"isolation.level", "read_committed"},
                            // Eager: a rebalance revokes everything first, so a
                            // batch in flight is simply abandoned (see worker.h).
                            {"partition.assignment.strategy", "range,roundrobin"},
                            {"enable.partition.eof", "false"}});
    if (!cconf) return cconf.error();
    std::string err;
    if (cconf.value()->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(this), err) !=
        RdKafka::Conf::CONF_OK) {
      return make_error(errc::bad_setting, "rebalance_cb: " + err);
    }
    consumer.reset(RdKafka::KafkaConsumer::create(cconf.value().get(), err));
    if (!consumer) return make_error(errc::client_failed, "consumer: " + err);

    settings_map pover{{"enable.idempotence", "true"}, {"linger.ms", "5"}};
    if (transactional) {
      txn_id = w.transactional_id_prefix + "-" + opts.worker_id + "-" + std::to_string(opts.instance);
      pover["transactional.id"] = txn_id;
    }
    auto pconf = make_conf(cfg.kafka.settings, pover);
    if (!pconf) return pconf.error();
    if (pconf.value()->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(this), err) !=
        RdKafka::Conf::CONF_OK) {
      return make_error(errc::bad_setting, "dr_cb: " + err);
    }
    producer.reset(RdKafka::Producer::create(pconf.value().get(), err));
    if (!producer) return make_error(errc::client_failed, "producer: " + err);
    if (transactional) {
      // Fences any earlier producer with the same transactional id (a zombie
      // of this worker) and aborts its open transaction.
      std::unique_ptr<RdKafka::Error> e(producer->init_transactions(60000));
      if (e) {
        return make_error(errc::client_failed,
                          "init_transactions for transactional.id '" + txn_id + "': " + e->str());
      }
    }
    auto rc = consumer->subscribe({cfg.topics.tickets});
    if (rc != RdKafka::ERR_NO_ERROR) {
      return make_error(errc::client_failed,
                        "subscribe to '" + cfg.topics.tickets + "': " + RdKafka::err2str(rc));
    }
    spdlog::info("worker {}-{}: backend {} (model {}, adapter {}), delivery {}, group {}{}",
                 opts.worker_id, opts.instance, model.name(), model.model_version(),
                 model.adapter_version(), transactional ? "exactly_once" : "at_least_once",
                 w.group_id, transactional ? ", transactional.id " + txn_id : "");
    return success();
  }

  // Gives the allocator's free pages back to the system, once a minute.
  // glibc keeps the memory of RocksDB's flushed memtables inside its arenas:
  // in the soak benchmark (500 tickets/s, state on) RSS rose ~17 MB/h while
  // the heap in use stayed flat; trimming each minute kept RSS flat
  // (workers/bench/soak_bench.cc prints the heap in use and held). Not
  // glibc: nothing to do.
  void trim_heap(clock::time_point now) {
    last_heap_trim = now;
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
  }

  // Consumer lag of every assigned partition, from librdkafka's cached high
  // watermarks (no broker round trip).
  void report_lag() {
    last_lag_report = clock::now();
    opts.probe->queue(queued_now.load(), queued_tokens_now.load(), paused_now.load(), pauses_now.load());
    if (store) {
      if (auto m = store->memory()) opts.probe->state_memory(m.value().total());
    }
    partition_list parts;
    if (consumer->assignment(parts.items) != RdKafka::ERR_NO_ERROR) return;
    consumer->position(parts.items);
    for (const auto* p : parts.items) {
      int64_t low = 0, high = 0;
      if (p->offset() >= 0 &&
          consumer->get_watermark_offsets(p->topic(), p->partition(), &low, &high) == RdKafka::ERR_NO_ERROR &&
          high >= 0) {
        opts.probe->lag(p->topic(), p->partition(), std::max<int64_t>(0, high - p->offset()));
      }
    }
  }

  result<void> produce_changelog(const state::update* up) {
    if (!up) return success();
    const std::string& topic = cfg.state.changelog_topic;
    for (const auto& r : up->changelog) {
      for (;;) {
        auto rc = producer->produce(topic, r.partition, RdKafka::Producer::RK_MSG_COPY,
                                    r.value ? const_cast<char*>(r.value->data()) : nullptr,
                                    r.value ? r.value->size() : 0, r.key.data(), r.key.size(), 0, nullptr);
        if (rc == RdKafka::ERR_NO_ERROR) break;
        if (rc != RdKafka::ERR__QUEUE_FULL) {
          return make_error(errc::client_failed, "produce to '" + topic + "' partition " +
                                                     std::to_string(r.partition) + ": " + RdKafka::err2str(rc));
        }
        producer->poll(10);
      }
    }
    return success();
  }

  result<void> produce_all(const std::vector<output_record>& outputs) {
    for (const auto& o : outputs) {
      for (;;) {
        auto rc = producer->produce(o.topic, RdKafka::Topic::PARTITION_UA,
                                    RdKafka::Producer::RK_MSG_COPY,
                                    const_cast<char*>(o.value.data()), o.value.size(),
                                    o.key.data(), o.key.size(), 0, nullptr);
        if (rc == RdKafka::ERR_NO_ERROR) break;
        if (rc != RdKafka::ERR__QUEUE_FULL) {
          return make_error(errc::client_failed, "produce to '" + o.topic + "': " + RdKafka::err2str(rc));
        }
        producer->poll(10);
      }
    }
    return success();
  }

  // Commits one processed batch. Returns false if it was not committed (the
  // caller puts it back in the queue); an error if the worker must stop.
  // `timeout_ms` gives each blocking step its time limit.
  template <class Timeout>
  result<bool> commit(const std::vector<input_record>& batch,
                      const std::vector<output_record>& outputs, const state::update* up,
                      Timeout timeout_ms) {
    const batch_offsets offsets(batch);
    partition_list next;
    offsets.next_offsets(next);
    if (transactional) {
      std::unique_ptr<RdKafka::Error> e(producer->begin_transaction());
      if (e) return make_error(errc::client_failed, "begin_transaction: " + e->str());
      auto failed = [&](const std::string& step, bool fatal, const std::string& what) -> result<bool> {
        if (fatal) {
          return make_error(errc::client_failed,
                            step + " (transactional.id '" + txn_id + "'): " + what);
        }
        spdlog::warn("worker {}-{}: {} failed, aborting the transaction and processing the batch again: {}",
                     opts.worker_id, opts.instance, step, what);
        std::unique_ptr<RdKafka::Error> a(producer->abort_transaction(timeout_ms()));
        if (a) return make_error(errc::client_failed, "abort_transaction: " + a->str());
        ++stats.transactions_aborted;
        if (opts.probe) opts.probe->transaction_aborted();
        return false;
      };
      auto is_fatal = [](const RdKafka::Error& err) {
        return err.is_fatal() || err.code() == RdKafka::ERR__FENCED ||
               err.code() == RdKafka::ERR_PRODUCER_FENCED;
      };
      if (auto p = produce_all(outputs); !p) return failed("produce", false, p.error().message);
      if (auto p = produce_changelog(up); !p) return failed("produce", false, p.error().message);
      std::unique_ptr<RdKafka::ConsumerGroupMetadata> meta(consumer->groupMetadata());
      e.reset(producer->send_offsets_to_transaction(next.items, meta.get(), timeout_ms()));
      if (e) return failed("send_offsets_to_transaction", is_fatal(*e), e->str());
      e.reset(producer->commit_transaction(timeout_ms()));
      if (e) return failed("commit_transaction", is_fatal(*e), e->str());
      return true;
    }
    // at_least_once: outputs first, acknowledged; then the offsets.
    delivery_errors = 0;
    if (auto p = produce_all(outputs); !p) return p.error();
    if (auto p = produce_changelog(up); !p) return p.error();
    if (producer->flush(timeout_ms()) != RdKafka::ERR_NO_ERROR || delivery_errors > 0) {
      spdlog::warn("worker {}-{}: {} outputs not acknowledged ({}); processing the batch again",
                   opts.worker_id, opts.instance, delivery_errors, last_delivery_error);
      return false;
    }
    // The state before the offsets: a crash in between leaves the store
    // ahead of the committed offset, and the restore on the next assignment
    // brings back the changelog's copy, which holds this batch too.
    if (up) {
      if (auto ok = updater->apply(*up); !ok) return make_error(errc::client_failed, "state: " + ok.error().message);
    }
    auto rc = consumer->commitSync(next.items);
    if (rc != RdKafka::ERR_NO_ERROR) {
      spdlog::warn("worker {}-{}: offset commit failed ({}); outputs may repeat",
                   opts.worker_id, opts.instance, RdKafka::err2str(rc));
      return false;
    }
    return true;
  }

  void count(const std::vector<output_record>& outputs) {
    for (const auto& o : outputs) {
      ++stats.consumed;
      ++stats.by_topic[o.topic];
      switch (o.kind) {
        case outcome::routed: ++stats.routed; break;
        case outcome::escalated: ++stats.escalated; ++stats.by_reason[o.reason]; break;
        case outcome::dead_lettered:
          ++stats.dead_lettered;
          ++stats.by_reason[o.reason];
          if (spdlog::should_log(spdlog::level::debug)) {
            ops::log_scope at({.partition = o.partition, .offset = o.offset});
            spdlog::debug("worker {}: dead-lettered to {}: {}", log_name, o.topic, o.reason);
          }
          break;
      }
    }
    ++stats.batches;
    stats.last_commit = clock::now();
  }

  // A committed batch's tickets to the probe: outcome, category, confidence,
  // the reason code (never the detail text, which may quote the ticket), and
  // the end-to-end latency from each record's timestamp.
  void report(const std::vector<input_record>& batch, const std::vector<output_record>& outputs) {
    if (!opts.probe) return;
    for (const auto& o : outputs) {
      opts.probe->ticket_out(probe_outcome(o.kind), o.category, o.confidence);
      if (o.kind == outcome::escalated) opts.probe->escalated(o.reason);
      if (o.kind == outcome::dead_lettered) opts.probe->dead_lettered(o.reason);
      if (o.has_shadow) {
        opts.probe->shadow_decision(o.shadow_category == o.category,
                                    o.shadow_escalated == (o.kind == outcome::escalated));
      }
    }
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    std::vector<double> e2e;
    e2e.reserve(batch.size());
    for (const auto& r : batch) {
      if (r.timestamp_ms > 0) e2e.push_back(static_cast<double>(std::max<int64_t>(0, now_ms - r.timestamp_ms)) / 1000.0);
    }
    opts.probe->committed(e2e);
  }

  // --- The inference thread. ---

  void inference_loop() {
    ops::log_scope who({.worker = log_name});
    for (;;) {
      job* j = nullptr;
      {
        std::unique_lock lock(job_mutex);
        job_cv.wait(lock, [&] { return quit || (current && !current->started); });
        if (quit) return;
        j = current.get();
        j->started = true;
      }
      const auto started = clock::now();
      try {
        j->outputs = proc.process(j->batch);
      } catch (const std::exception& e) {
        j->error = e.what();
      } catch (...) {
        j->error = "unknown exception";
      }
      j->seconds = std::chrono::duration<double>(clock::now() - started).count();
      {
        std::lock_guard lock(job_mutex);
        j->done = true;
      }
      job_cv.notify_all();  // the Kafka thread may be waiting for it (wait_done)
    }
  }

  // Waits up to `ms` for the batch with the inference thread to be done.
  void wait_done(int ms) {
    std::unique_lock lock(job_mutex);
    job_cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return !current || current->done; });
  }

  // Hands the oldest queued records (up to the batch limits) to the
  // inference thread.
  void hand_batch() {
    const auto& w = cfg.worker;
    auto j = std::make_unique<job>();
    j->generation = generation;
    int tokens = 0;
    while (!queue.empty() && static_cast<int>(j->batch.size()) < w.batch_max_tickets &&
           tokens < w.batch_max_tokens) {
      tokens += queue.front().tokens;
      queue_tokens -= queue.front().tokens;
      j->batch.push_back(std::move(queue.front().record));
      queue.pop_front();
    }
    j->tokens = static_cast<uint64_t>(tokens);
    publish();
    if (!inference.joinable()) inference = std::thread([this] { inference_loop(); });
    {
      std::lock_guard lock(job_mutex);
      current = std::move(j);
    }
    job_cv.notify_all();
  }

  // The batch back from the inference thread, if it is done.
  std::unique_ptr<job> take_done() {
    std::lock_guard lock(job_mutex);
    if (!current || !current->done) return nullptr;
    return std::move(current);
  }

  bool classifying() const {
    std::lock_guard lock(job_mutex);
    return current != nullptr;
  }

  // A full batch is queued, or the oldest queued record waited long enough.
  bool batch_due(clock::time_point now) const {
    if (queue.empty()) return false;
    const auto& w = cfg.worker;
    if (static_cast<int>(queue.size()) >= w.batch_max_tickets || queue_tokens >= w.batch_max_tokens) return true;
    return now - queue.front().at >= std::chrono::milliseconds(w.batch_max_wait_ms);
  }

  // State, commit, local state, counts and metrics for one classified batch.
  // Returns false if the transaction failed (the batch went back to the
  // queue, or was dropped when stopping); an error if the worker must stop.
  template <class Timeout>
  result<bool> finish(job& j, bool stopping, Timeout timeout_ms) {
    auto& batch = j.batch;
    auto& outputs = j.outputs;
    if (opts.probe) opts.probe->batch(batch.size(), j.tokens, j.seconds);
    std::optional<state::update> up;
    if (store) {
      const batch_offsets offsets(batch);
      std::map<int32_t, int64_t> next;
      for (const auto& [tp, range] : offsets.ranges) next[tp.second] = range.second;
      const auto facts = state_facts(batch, outputs, cfg.state.keep_ticket_text);
      auto u = updater->prepare(facts, next);
      if (!u) return make_error(errc::client_failed, "state: " + u.error().message);
      up = std::move(u.value());
      for (const auto& f : facts) drift_touched.insert({f.partition, state::quarter_of(f.timestamp_ms)});
    }
    auto committed = commit(batch, outputs, up ? &*up : nullptr, timeout_ms);
    if (!committed) return committed.error();
    if (!committed.value()) {
      if (stopping) {
        ++stats.batches_abandoned;  // the next owner reads it from the committed offsets
      } else {
        put_back(batch);
      }
      return false;
    }
    if (up && transactional) {
      // Committed: now the local copy (see worker.h).
      if (auto ok = updater->apply(*up); !ok) return make_error(errc::client_failed, "state: " + ok.error().message);
    }
    if (up) {
      stats.changelog_records += up->changelog.size();
      since_drift_check += outputs.size();
      if (since_drift_check >= 2000) check_drift();
    }
    count(outputs);
    report(batch, outputs);
    return true;
  }

  // Leaves the group (partitions move at once) and returns `e`.
  error fail(error e) {
    consumer->close();
    return e;
  }

  // --- The Kafka thread. ---

  result<void> run(const std::atomic<bool>& stop) {
    ops::log_scope who({.worker = log_name});
    const auto& w = cfg.worker;
    auto last_record = clock::now();
    bool stopping = false;
    clock::time_point deadline{};       // of the shutdown
    clock::time_point classify_until{}; // a batch still classifying then is abandoned
    // Each blocking step of a commit: 60 s, or what is left of the shutdown.
    auto timeout_ms = [&]() -> int {
      if (!stopping) return 60000;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
      return static_cast<int>(std::max<int64_t>(100, left));
    };
    for (;;) {
      const auto now = clock::now();
      // A hung backend must show in liveness: no heartbeat while a batch is
      // with the inference thread (as when the loop classified inline).
      if (opts.health && !classifying()) opts.health->heartbeat();
      if (opts.probe && now - last_lag_report >= 1s) report_lag();
      if (now - last_heap_trim >= 60s) trim_heap(now);
      if (state_failure) return fail(*state_failure);
      if (stop.load() && !stopping) {
        stopping = true;
        deadline = now + std::chrono::milliseconds(w.shutdown_timeout_ms);
        const auto reserve = std::min<std::chrono::milliseconds>(
            std::chrono::milliseconds(w.shutdown_timeout_ms / 2), 5000ms);
        classify_until = deadline - reserve;
        if (opts.health) opts.health->set_stopping();
        spdlog::info("worker {}-{}: stopping: {} queued record(s) left to the partitions' next owner{}",
                     opts.worker_id, opts.instance, queue.size(),
                     classifying() ? ", finishing the batch in flight" : "");
        drop_queued([](const input_record&) { return true; });
        publish();
      }

      if (auto j = take_done()) {
        if (opts.health) opts.health->heartbeat();
        if (j->generation != generation) {
          // Its partitions were revoked while it was classified.
          ++stats.batches_abandoned;
        } else if (!j->error.empty()) {
          // The backend failed as a whole (device lost): nothing of this
          // batch is committed; another worker, or this one restarted, takes it.
          return fail(make_error(errc::client_failed, "backend " + model.name() + " failed: " + j->error));
        } else {
          auto done = finish(*j, stopping, timeout_ms);
          if (!done) return fail(done.error());
          if (!stopping && opts.max_records > 0 && stats.consumed >= opts.max_records) break;
        }
      }

      const bool busy = classifying();
      if (stopping) {
        if (!busy) break;
        if (now >= classify_until) {
          ++stats.batches_abandoned;
          spdlog::warn("worker {}-{}: the backend did not finish its batch within the shutdown timeout; "
                       "abandoning it (nothing of it was produced or committed)",
                       opts.worker_id, opts.instance);
          break;
        }
      } else {
        if (!busy && batch_due(now)) hand_batch();
        if (!paused.empty() && queue_drained()) resume_all();
        if (opts.idle_exit_ms > 0 && !busy && queue.empty() &&
            now - last_record > std::chrono::milliseconds(opts.idle_exit_ms)) {
          break;
        }
      }

      // consume() at least every 100 ms (group membership, rebalance
      // callbacks). While a batch is classified: if records can still come,
      // poll for them briefly so the batch's end is noticed within 5 ms; if
      // the partitions are paused (or stopping), wait for the batch itself.
      // Otherwise wait for records, less when the oldest queued record's
      // wait ends first.
      int wait_ms = 100;
      if (classifying()) {
        if (stopping || !paused.empty()) {
          wait_done(100);
          wait_ms = 0;
        } else {
          wait_ms = 5;
        }
      } else if (!stopping && !queue.empty()) {
        const auto due = queue.front().at + std::chrono::milliseconds(w.batch_max_wait_ms);
        wait_ms = static_cast<int>(std::clamp<int64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(due - clock::now()).count(), 0, 100));
      }
      std::unique_ptr<RdKafka::Message> m(consumer->consume(wait_ms));
      switch (m->err()) {
        case RdKafka::ERR_NO_ERROR: {
          // Read while stopping: not queued, never committed; the next owner
          // reads it again.
          if (stopping) break;
          input_record r;
          r.topic = m->topic_name();
          r.partition = m->partition();
          r.offset = m->offset();
          if (m->key()) r.key = *m->key();
          r.value.assign(static_cast<const char*>(m->payload()), m->len());
          r.timestamp_ms = m->timestamp().timestamp;
          auto& next = next_offset[{r.topic, r.partition}];
          if (next > 0 && r.offset < next) {
            if (stats.records_reread++ == 0 || stats.records_reread % 1000 == 0) {
              ops::log_scope at({.topic = r.topic, .partition = r.partition, .offset = r.offset});
              spdlog::warn("worker {}-{}: {}/{}: offset {} delivered again after {} (after a pause/resume); "
                           "skipped ({} so far)", opts.worker_id, opts.instance, r.topic, r.partition,
                           r.offset, next - 1, stats.records_reread);
            }
            break;
          }
          next = r.offset + 1;
          if (stats.first_record == clock::time_point{}) stats.first_record = clock::now();
          if (opts.probe) opts.probe->consumed(r.partition);
          last_record = clock::now();
          enqueue(std::move(r), last_record);
          check_queue();
          break;
        }
        case RdKafka::ERR__TIMED_OUT:
        case RdKafka::ERR__PARTITION_EOF:
          break;
        default:
          spdlog::warn("worker {}-{}: consume: {}", opts.worker_id, opts.instance, m->errstr());
      }
    }
    if (store && !drift_touched.empty()) check_drift();
    spdlog::info("worker {}-{}: stopping after {} records ({} routed, {} escalated, {} dead-lettered)",
                 opts.worker_id, opts.instance, stats.consumed, stats.routed, stats.escalated,
                 stats.dead_lettered);
    consumer->close();  // leaves the group, so partitions move at once
    const int flush_ms =
        stopping ? static_cast<int>(std::max<int64_t>(
                       0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count()))
                 : w.shutdown_timeout_ms;
    producer->flush(flush_ms);
    return success();
  }
};

std::vector<state::ticket_fact> state_facts(const std::vector<input_record>& batch,
                                            const std::vector<output_record>& outputs, bool keep_text) {
  std::vector<state::ticket_fact> facts(outputs.size());
  v1::RoutedTicket routed;
  v1::Escalation escalation;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& o = outputs[i];
    auto& f = facts[i];
    f.partition = o.partition;
    f.offset = o.offset;
    f.timestamp_ms = i < batch.size() ? batch[i].timestamp_ms : 0;
    f.outcome = std::string(outcome_name(o.kind));
    f.category = o.category;
    f.confidence = o.confidence;
    f.reason = o.reason;
    f.has_shadow = o.has_shadow;  // shadow mode (workers/shadow.h)
    f.shadow_category = o.shadow_category;
    f.shadow_escalated = o.shadow_escalated;
    const v1::TicketEvent* t = nullptr;
    const v1::TriageResult* r = nullptr;
    if (o.kind == outcome::routed && routed.ParseFromString(o.value)) {
      t = &routed.ticket();
      r = &routed.result();
    } else if (o.kind == outcome::escalated && escalation.ParseFromString(o.value)) {
      t = &escalation.ticket();
      r = &escalation.draft();
    }
    if (t && r) {
      f.ticket_id = t->id();
      f.urgency = r->urgency();
      f.tokens = r->prompt_tokens();
      f.unknown_tokens = std::min(r->unknown_tokens(), f.tokens);
      if (keep_text) f.text = t->subject().empty() ? t->body() : t->subject() + "\n" + t->body();
    }
  }
  return facts;
}

kafka_worker::kafka_worker(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
kafka_worker::~kafka_worker() = default;

result<std::unique_ptr<kafka_worker>> kafka_worker::create(const topology::config& cfg,
                                                           backend& model, const options& opts) {
  auto p = std::make_unique<impl>(cfg, model, opts);
  if (auto ok = p->connect(); !ok) return ok.error();
  return std::unique_ptr<kafka_worker>(new kafka_worker(std::move(p)));
}

result<void> kafka_worker::run(const std::atomic<bool>& stop) { return impl_->run(stop); }

const worker_stats& kafka_worker::stats() const { return impl_->stats; }

kafka_worker::backpressure_state kafka_worker::backpressure() const {
  return {.queued_tickets = impl_->queued_now.load(),
          .queued_tokens = impl_->queued_tokens_now.load(),
          .paused_partitions = impl_->paused_now.load(),
          .pauses = impl_->pauses_now.load(),
          .classifying = impl_->classifying()};
}

}  // namespace triage::workers
