// pipeline_bench: the worker's own overhead. On one broker, in one run, it
// pushes the same records through
//   1. a plain pass-through: consume, produce each record unchanged, commit
//      the offsets in the same transaction (or after the acks), no decoding;
//   2. the triage worker with the `null` classifier backend (decode, route,
//      build RoutedTicket/Escalation/DeadLetter, same delivery mode);
// and prints events/s for both and their ratio. A benchmark, not a test.
//
//   pipeline_bench --bootstrap 127.0.0.1:9092 [--records 20000] [--batch 64]
//                  [--delivery exactly_once|at_least_once]
//   (ops/bench.sh pipeline starts a broker and runs it)
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>

#include <CLI/CLI.hpp>
#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include "workers/kafka_conf.h"
#include "workers/topics.h"
#include "workers/worker.h"

namespace {

using namespace triage;
using clock_type = std::chrono::steady_clock;

std::string unique(const std::string& p) {
  return p + "-" + std::to_string(std::random_device{}() % 1000000000u);
}

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pipeline_bench: worker overhead against a plain pass-through"};
  std::string bootstrap = "127.0.0.1:9092", delivery = "exactly_once";
  int records = 20000, batch = 64, partitions = 4;
  app.add_option("--bootstrap", bootstrap)->capture_default_str();
  app.add_option("--records", records)->capture_default_str();
  app.add_option("--batch", batch, "records per batch/transaction")->capture_default_str();
  app.add_option("--partitions", partitions)->capture_default_str();
  app.add_option("--delivery", delivery, "exactly_once or at_least_once")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  topology::config cfg;
  cfg.kafka.settings = {{"bootstrap.servers", bootstrap}};
  const bool txn = delivery == "exactly_once";
  cfg.worker.delivery = txn ? topology::delivery_mode::exactly_once : topology::delivery_mode::at_least_once;
  cfg.worker.batch_max_tickets = batch;
  cfg.worker.batch_max_wait_ms = 20;
  cfg.topics.partitions = partitions;
  const std::string prefix = unique("bench");
  cfg.topics.tickets = prefix + ".tickets";
  cfg.topics.escalations = prefix + ".escalations";
  cfg.topics.dead_letter = prefix + ".dlq";
  cfg.topics.routed_prefix = prefix + ".routed.";
  cfg.worker.group_id = prefix;
  cfg.worker.transactional_id_prefix = prefix;
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
  return 0;
}
