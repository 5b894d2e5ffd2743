#include "workers/worker.h"

#include <chrono>
#include <thread>

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include "workers/kafka_conf.h"

namespace triage::workers {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Owns a vector of TopicPartition pointers, as the C++ API hands them out.
struct partition_list {
  std::vector<RdKafka::TopicPartition*> items;
  partition_list() = default;
  partition_list(const partition_list&) = delete;
  partition_list& operator=(const partition_list&) = delete;
  ~partition_list() { RdKafka::TopicPartition::destroy(items); }
};

// For each (topic, partition) in the batch: the first offset read (to rewind
// to) and the next offset to commit.
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

}  // namespace

struct kafka_worker::impl final : public RdKafka::RebalanceCb, public RdKafka::DeliveryReportCb {
  impl(const topology::config& c, backend& m, const options& o)
      : cfg(c), model(m), opts(o), proc(c, m),
        transactional(c.worker.delivery == topology::delivery_mode::exactly_once) {}

  const topology::config& cfg;
  backend& model;
  options opts;
  processor proc;
  bool transactional;
  std::string txn_id;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer;
  std::unique_ptr<RdKafka::Producer> producer;
  worker_stats stats;
  // Set by the rebalance callback (which runs inside consume()): the batch
  // being collected belongs to a generation that no longer owns it.
  bool revoked = false;
  int delivery_errors = 0;
  std::string last_delivery_error;

  void rebalance_cb(RdKafka::KafkaConsumer* c, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& parts) override {
    ++stats.rebalances;
    std::string names;
    for (const auto* p : parts) {
      names += (names.empty() ? "" : ",") + p->topic() + "/" + std::to_string(p->partition());
    }
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      spdlog::info("worker {}-{}: assigned {}", opts.worker_id, opts.instance, names);
      c->assign(parts);
    } else {
      spdlog::info("worker {}-{}: revoked {}", opts.worker_id, opts.instance, names);
      revoked = true;
      c->unassign();
    }
  }

  void dr_cb(RdKafka::Message& m) override {
    if (m.err() != RdKafka::ERR_NO_ERROR) {
      ++delivery_errors;
      last_delivery_error = m.errstr();
    }
  }

  result<void> connect() {
    const auto& w = cfg.worker;
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

  // Collects up to one batch. Returns false when the worker should stop.
  bool collect(std::vector<input_record>& batch, const std::atomic<bool>& stop,
               clock::time_point& last_record) {
    const auto& w = cfg.worker;
    int tokens = 0;
    clock::time_point deadline{};
    revoked = false;
    while (static_cast<int>(batch.size()) < w.batch_max_tickets && tokens < w.batch_max_tokens) {
      if (stop.load()) return !batch.empty();
      int timeout_ms = 100;
      if (!batch.empty()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left <= 0ms) break;
        timeout_ms = static_cast<int>(std::min<int64_t>(left.count(), 100));
      }
      std::unique_ptr<RdKafka::Message> m(consumer->consume(timeout_ms));
      if (revoked) {
        // Everything collected so far belonged to revoked partitions; the
        // new owner (maybe us again) re-reads it from the committed offsets.
        batch.clear();
        tokens = 0;
        revoked = false;
      }
      switch (m->err()) {
        case RdKafka::ERR_NO_ERROR: {
          input_record r;
          r.topic = m->topic_name();
          r.partition = m->partition();
          r.offset = m->offset();
          if (m->key()) r.key = *m->key();
          r.value.assign(static_cast<const char*>(m->payload()), m->len());
          r.timestamp_ms = m->timestamp().timestamp;
          // A token estimate from the size; the classifier truncates precisely.
          tokens += static_cast<int>(r.value.size() / 4 + 1);
          if (batch.empty()) deadline = clock::now() + std::chrono::milliseconds(w.batch_max_wait_ms);
          if (stats.first_record == clock::time_point{}) stats.first_record = clock::now();
          batch.push_back(std::move(r));
          last_record = clock::now();
          break;
        }
        case RdKafka::ERR__TIMED_OUT:
        case RdKafka::ERR__PARTITION_EOF:
          break;
        default:
          spdlog::warn("worker {}-{}: consume: {}", opts.worker_id, opts.instance, m->errstr());
      }
      if (batch.empty() && opts.idle_exit_ms > 0 &&
          clock::now() - last_record > std::chrono::milliseconds(opts.idle_exit_ms)) {
        return false;
      }
    }
    return true;
  }

  void rewind(const batch_offsets& offsets) {
    for (const auto& [tp, range] : offsets.ranges) {
      std::unique_ptr<RdKafka::TopicPartition> p(
          RdKafka::TopicPartition::create(tp.first, tp.second, range.first));
      // Fails harmlessly if the partition was revoked meanwhile: its new
      // owner starts from the committed offset anyway.
      consumer->seek(*p, 5000);
    }
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

  // Commits one processed batch. Returns false if it was not committed (and
  // the consumer was rewound to re-read it); an error if the worker must stop.
  result<bool> commit(const std::vector<input_record>& batch,
                      const std::vector<output_record>& outputs, int timeout_ms) {
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
        spdlog::warn("worker {}-{}: {} failed, aborting the transaction and re-reading the batch: {}",
                     opts.worker_id, opts.instance, step, what);
        std::unique_ptr<RdKafka::Error> a(producer->abort_transaction(timeout_ms));
        if (a) return make_error(errc::client_failed, "abort_transaction: " + a->str());
        ++stats.transactions_aborted;
        rewind(offsets);
        return false;
      };
      auto is_fatal = [](const RdKafka::Error& err) {
        return err.is_fatal() || err.code() == RdKafka::ERR__FENCED ||
               err.code() == RdKafka::ERR_PRODUCER_FENCED;
      };
      if (auto p = produce_all(outputs); !p) return failed("produce", false, p.error().message);
      std::unique_ptr<RdKafka::ConsumerGroupMetadata> meta(consumer->groupMetadata());
      e.reset(producer->send_offsets_to_transaction(next.items, meta.get(), timeout_ms));
      if (e) return failed("send_offsets_to_transaction", is_fatal(*e), e->str());
      e.reset(producer->commit_transaction(timeout_ms));
      if (e) return failed("commit_transaction", is_fatal(*e), e->str());
      return true;
    }
    // at_least_once: outputs first, acknowledged; then the offsets.
    delivery_errors = 0;
    if (auto p = produce_all(outputs); !p) return p.error();
    if (producer->flush(timeout_ms) != RdKafka::ERR_NO_ERROR || delivery_errors > 0) {
      spdlog::warn("worker {}-{}: {} outputs not acknowledged ({}); re-reading the batch",
                   opts.worker_id, opts.instance, delivery_errors, last_delivery_error);
      rewind(offsets);
      return false;
    }
    auto rc = consumer->commitSync(next.items);
    if (rc != RdKafka::ERR_NO_ERROR) {
      spdlog::warn("worker {}-{}: offset commit failed ({}); outputs may repeat",
                   opts.worker_id, opts.instance, RdKafka::err2str(rc));
      rewind(offsets);
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
        case outcome::dead_lettered: ++stats.dead_lettered; ++stats.by_reason[o.reason]; break;
      }
    }
    ++stats.batches;
    stats.last_commit = clock::now();
  }

  result<void> run(const std::atomic<bool>& stop) {
    auto last_record = clock::now();
    std::vector<input_record> batch;
    for (;;) {
      batch.clear();
      const bool more = collect(batch, stop, last_record);
      if (!batch.empty()) {
        std::vector<output_record> outputs;
        try {
          outputs = proc.process(batch);
        } catch (const std::exception& e) {
          // The backend failed as a whole (device lost): nothing of this
          // batch is committed; another worker, or this one restarted, takes it.
          consumer->close();
          return make_error(errc::client_failed,
                            "backend " + model.name() + " failed: " + std::string(e.what()));
        }
        const int timeout = stop.load() ? cfg.worker.shutdown_timeout_ms : 60000;
        auto committed = commit(batch, outputs, timeout);
        if (!committed) return committed.error();
        if (committed.value()) count(outputs);
      }
      if (!more || stop.load() || (opts.max_records > 0 && stats.consumed >= opts.max_records)) {
        break;
      }
    }
    spdlog::info("worker {}-{}: stopping after {} records ({} routed, {} escalated, {} dead-lettered)",
                 opts.worker_id, opts.instance, stats.consumed, stats.routed, stats.escalated,
                 stats.dead_lettered);
    consumer->close();  // leaves the group, so partitions move at once
    producer->flush(cfg.worker.shutdown_timeout_ms);
    return success();
  }
};

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

}  // namespace triage::workers
