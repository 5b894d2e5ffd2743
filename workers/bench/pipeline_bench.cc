// pipeline_bench: the worker's own overhead. On one broker, in one run, it
// pushes the same records through
//   1. a plain pass-through: consume, produce each record unchanged, commit
//      the offsets in the same transaction (or after the acks), no decoding;
//   2. the triage worker with the `null` classifier backend (decode, route,
//      build RoutedTicket/Escalation/DeadLetter, same delivery mode);
// and prints events/s for both and their ratio. A benchmark, not a test.
//
//   pipeline_bench --bootstrap 127.0.0.1:9092 [--records 20000] [--batch 64]
//                  [--delivery exactly_once|at_least_once] [--state]
// --state adds 3. the same worker with its state store and changelog
// (state/), and prints the state's added cost per ticket.
//   (ops/bench.sh pipeline starts a broker and runs it)
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>

#include <CLI/CLI.hpp>
#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include "state/store.h"
#include "workers/bench/bench_util.h"
#include "state/updater.h"
#include "workers/kafka_conf.h"
#include "workers/processor.h"
#include "workers/topics.h"
#include "workers/worker.h"

namespace {

using namespace triage;
using bench::clock_type;

using bench::unique;

void fill(const topology::config& cfg, int n) {
  auto conf = workers::make_conf(cfg.kafka.settings, {{"enable.idempotence", "true"}, {"linger.ms", "20"}});
  std::string err;
  std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf.value().get(), err));
  for (int i = 0; i < n; ++i) {
    v1::TicketEvent t;
    t.set_id("T-" + std::to_string(i));
    t.set_body("I was charged twice for the same card payment, number " + std::to_string(i));
    const std::string v = t.SerializeAsString(), k = t.id();
    while (p->produce(cfg.topics.tickets, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                      const_cast<char*>(v.data()), v.size(), k.data(), k.size(), 0, nullptr) ==
           RdKafka::ERR__QUEUE_FULL) {
      p->poll(10);
    }
  }
  p->flush(60000);
}

// Consume -> produce unchanged -> commit, batch by batch, like the worker.
double pass_through(const topology::config& cfg, int n, bool transactional) {
  auto cconf = workers::make_conf(cfg.kafka.settings, {{"group.id", unique("passthrough")},
                                                       {"enable.auto.commit", "false"},
                                                       {"auto.offset.reset", "earliest"},
                                                       {"isolation.level", "read_committed"}});
  workers::settings_map pover{{"enable.idempotence", "true"}, {"linger.ms", "5"}};
  if (transactional) pover["transactional.id"] = unique("passthrough-txn");
  auto pconf = workers::make_conf(cfg.kafka.settings, pover);
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(cconf.value().get(), err));
  std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(pconf.value().get(), err));
  if (transactional) delete p->init_transactions(60000);
  c->subscribe({cfg.topics.tickets});
  const std::string out = cfg.topics.routed_prefix + "passthrough";
  int done = 0;
  clock_type::time_point start{};
  while (done < n) {
    std::vector<std::unique_ptr<RdKafka::Message>> batch;
    const auto deadline = clock_type::now() + std::chrono::milliseconds(cfg.worker.batch_max_wait_ms);
    while (static_cast<int>(batch.size()) < cfg.worker.batch_max_tickets) {
      std::unique_ptr<RdKafka::Message> m(c->consume(batch.empty() ? 100 : 5));
      if (m->err() == RdKafka::ERR_NO_ERROR) {
        if (done == 0 && batch.empty()) start = clock_type::now();
        batch.push_back(std::move(m));
      } else if (!batch.empty() && clock_type::now() >= deadline) {
        break;
      }
    }
    std::map<std::pair<std::string, int32_t>, int64_t> next;
    if (transactional) delete p->begin_transaction();
    for (auto& m : batch) {
      while (p->produce(out, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                        m->payload(), m->len(), m->key_pointer(), m->key_len(), 0, nullptr) ==
             RdKafka::ERR__QUEUE_FULL) {
        p->poll(5);
      }
      next[{m->topic_name(), m->partition()}] = m->offset() + 1;
    }
    std::vector<RdKafka::TopicPartition*> offsets;
    for (const auto& [tp, o] : next) offsets.push_back(RdKafka::TopicPartition::create(tp.first, tp.second, o));
    if (transactional) {
      std::unique_ptr<RdKafka::ConsumerGroupMetadata> meta(c->groupMetadata());
      delete p->send_offsets_to_transaction(offsets, meta.get(), 60000);
      delete p->commit_transaction(60000);
    } else {
      p->flush(60000);
      c->commitSync(offsets);
    }
    RdKafka::TopicPartition::destroy(offsets);
    done += static_cast<int>(batch.size());
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  c->close();
  return n / secs;
}

double through_worker(const topology::config& cfg, int n) {
  workers::null_backend model({"cards", "payments", "account", "disputes"});
  auto w = workers::kafka_worker::create(cfg, model, {.worker_id = unique("bench"), .max_records = static_cast<uint64_t>(n)});
  if (!w) {
    std::fprintf(stderr, "worker: %s\n", w.error().message.c_str());
    return 0;
  }
  std::atomic<bool> stop{false};
  if (auto done = w.value()->run(stop); !done) {
    std::fprintf(stderr, "worker: %s\n", done.error().message.c_str());
    return 0;
  }
  // From the first record to the last commit, like the pass-through's
  // figure: the group join is not part of either.
  const auto& s = w.value()->stats();
  return n / std::chrono::duration<double>(s.last_commit - s.first_record).count();
}

// The state's CPU cost without Kafka: the processor alone against the
// processor plus the state path (facts from the outputs, the update with its
// changelog records, the RocksDB write), over the same records. Best of 3.
void state_cpu(const topology::config& cfg, int n, int batch, const std::string& dir) {
  std::vector<workers::input_record> records(static_cast<size_t>(n));
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  for (int i = 0; i < n; ++i) {
    v1::TicketEvent t;
    t.set_id("T-" + std::to_string(i));
    t.set_body("I was charged twice for the same card payment, number " + std::to_string(i));
    auto& r = records[static_cast<size_t>(i)];
    r.topic = cfg.topics.tickets;
    r.partition = i % 4;
    r.offset = i / 4;
    r.key = t.id();
    r.value = t.SerializeAsString();
    r.timestamp_ms = now_ms + i;
  }
  workers::null_backend model({"cards", "payments", "account", "disputes"});
  workers::processor proc(cfg, model);
  auto s = state::store::open(dir, {.no_wal = true});  // as the worker opens it
  if (!s) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    return;
  }
  state::updater up(*s.value(), {});
  double best_plain = 1e30, best_state = 1e30;
  size_t changelog = 0;
  for (int round = 0; round < 3; ++round) {
    for (int with = 0; with < 2; ++with) {
      const auto start = clock_type::now();
      size_t logged = 0;
      for (int i = 0; i < n; i += batch) {
        const auto first = records.begin() + i;
        const auto last = records.begin() + std::min(n, i + batch);
        std::vector<workers::input_record> b(first, last);
        auto out = proc.process(b);
        if (!with) continue;
        std::map<int32_t, int64_t> next;
        for (const auto& r : b) next[r.partition] = std::max(next[r.partition], r.offset + 1);
        auto u = up.prepare(workers::state_facts(b, out, false), next);
        if (!u || !up.apply(u.value())) {
          std::fprintf(stderr, "state update failed\n");
          return;
        }
        logged += u.value().changelog.size();
      }
      const double us = 1e6 * std::chrono::duration<double>(clock_type::now() - start).count() / n;
      if (with) {
        best_state = std::min(best_state, us);
        changelog = logged;
      } else {
        best_plain = std::min(best_plain, us);
      }
    }
  }
  std::printf("state CPU cost, no Kafka (%d tickets, batch %d, best of 3):\n", n, batch);
  std::printf("  %-36s %10.2f us/ticket\n", "processor (null backend)", best_plain);
  std::printf("  %-36s %10.2f us/ticket\n", "processor + state update", best_state);
  std::printf("  %-36s %10.2f us/ticket (%.1f %%), %.2f changelog records/ticket\n", "state's added CPU",
              best_state - best_plain, 100.0 * (best_state / best_plain - 1),
              static_cast<double>(changelog) / n);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pipeline_bench: worker overhead against a plain pass-through"};
  std::string bootstrap = "127.0.0.1:9092", delivery = "exactly_once";
  bool with_state = false, state_cpu_only = false;
  int records = 20000, batch = 64, partitions = 4;
  app.add_option("--bootstrap", bootstrap)->capture_default_str();
  app.add_option("--records", records)->capture_default_str();
  app.add_option("--batch", batch, "records per batch/transaction")->capture_default_str();
  app.add_option("--partitions", partitions)->capture_default_str();
  app.add_option("--delivery", delivery, "exactly_once or at_least_once")->capture_default_str();
  app.add_flag("--state", with_state, "also run the worker with its state store and changelog");
  app.add_flag("--state-cpu-only", state_cpu_only, "only the state's CPU cost, without Kafka");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  topology::config cfg;
  if (state_cpu_only) {
    const std::string dir = "/tmp/" + unique("state-cpu");
    state_cpu(cfg, records, batch, dir);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return 0;
  }
  cfg.kafka.settings = {{"bootstrap.servers", bootstrap}};
  const bool txn = delivery == "exactly_once";
  cfg.worker.delivery = txn ? topology::delivery_mode::exactly_once : topology::delivery_mode::at_least_once;
  cfg.worker.batch_max_tickets = batch;
  cfg.worker.batch_max_wait_ms = 20;
  cfg.topics.partitions = partitions;
  const std::string prefix = unique("bench");
  bench::name_topics(cfg, prefix);
  auto names = workers::topic_names(cfg, {"cards", "payments", "account", "disputes", "passthrough"});
  if (auto ok = workers::create_topics(cfg, names); !ok) {
    std::fprintf(stderr, "%s\n", ok.error().message.c_str());
    return 1;
  }
  fill(cfg, records);
  const double base = pass_through(cfg, records, txn);
  const double ours = through_worker(cfg, records);
  std::printf("pipeline_bench: %d records, %d partitions, batch %d, %s\n", records, partitions,
              batch, delivery.c_str());
  std::printf("  %-36s %10.0f events/s\n", "pass-through (consume, produce, commit)", base);
  std::printf("  %-36s %10.0f events/s\n", "triage worker, null backend", ours);
  std::printf("  %-36s %10.1f %%\n", "worker / pass-through", 100.0 * ours / base);
  if (with_state) {
    // The same records again, through a worker of another group with state.
    topology::config scfg = cfg;
    scfg.worker.group_id = prefix + "-state";
    scfg.worker.transactional_id_prefix = prefix + "-state";
    scfg.state.enabled = true;
    scfg.state.directory = "/tmp/" + prefix + "-state";
    scfg.state.changelog_topic = prefix + ".changelog";
    const double stateful = through_worker(scfg, records);
    std::printf("  %-36s %10.0f events/s\n", "triage worker + state, null backend", stateful);
    std::printf("  %-36s %10.2f us/ticket (%.1f %% of the worker's time per ticket)\n",
                "state's added cost", 1e6 / stateful - 1e6 / ours, 100.0 * (ours / stateful - 1));
    std::error_code ec;
    std::filesystem::remove_all(scfg.state.directory, ec);
    state_cpu(cfg, records, batch, scfg.state.directory);
    std::filesystem::remove_all(scfg.state.directory, ec);
  }
  return 0;
}
