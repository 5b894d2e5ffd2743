#include "workers/run_cmds.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include "compute/classifier/taxonomy.h"
#include "schemas/codec.h"
#include "workers/kafka_conf.h"
#include "workers/topics.h"
#include "workers/worker.h"

namespace triage::workers {
namespace {

std::atomic<bool> stop_requested{false};

extern "C" void on_stop_signal(int) { stop_requested.store(true); }

// Loads the config and applies --set key=value Kafka settings on top.
result<topology::config> load(const std::string& path, const std::vector<std::string>& settings) {
  auto cfg = topology::load_config(path);
  if (!cfg) return cfg;
  for (const auto& kv : settings) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return make_error(topology::errc::bad_value, "--set '" + kv + "': expected key=value");
    }
    cfg.value().kafka.settings[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return cfg;
}

result<std::vector<std::string>> categories_of(const std::string& taxonomy_path) {
  auto tax = classifier::load_taxonomy(taxonomy_path);
  if (!tax) return tax.error();
  return tax.value().categories;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "worker";
  return buf;
}

}  // namespace

int run_worker(const worker_args& args) {
  auto cfg = load(args.config, args.settings);
  if (!cfg) {
    std::cerr << "triage worker: " << cfg.error().message << "\n";
    return 2;
  }
  if (args.backend != "null") {
    std::cerr << "triage worker: backend '" << args.backend
              << "' is not built yet (the SLM classifier is issue #4); use --backend null\n";
    return 2;
  }
  auto cats = categories_of(args.taxonomy);
  if (!cats) {
    std::cerr << "triage worker: " << cats.error().message << "\n";
    return 2;
  }
  null_backend model(cats.value());
  kafka_worker::options opts;
  opts.worker_id = args.worker_id.empty() ? host_name() : args.worker_id;
  opts.max_records = args.max_records;
  opts.idle_exit_ms = args.idle_exit_ms;
  auto w = kafka_worker::create(cfg.value(), model, opts);
  if (!w) {
    spdlog::error("worker: {}", w.error().message);
    return 1;
  }
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  auto done = w.value()->run(stop_requested);
  if (!done) {
    spdlog::error("worker: {}", done.error().message);
    return 1;
  }
  return 0;
}

int run_topics_create(const topics_args& args) {
  auto cfg = load(args.config, args.settings);
  if (!cfg) {
    std::cerr << "triage topics create: " << cfg.error().message << "\n";
    return 2;
  }
  auto cats = categories_of(args.taxonomy);
  if (!cats) {
    std::cerr << "triage topics create: " << cats.error().message << "\n";
    return 2;
  }
  const auto names = topic_names(cfg.value(), cats.value());
  if (auto ok = create_topics(cfg.value(), names); !ok) {
    std::cerr << "triage topics create: " << ok.error().message << "\n";
    return 1;
  }
  for (const auto& n : names) std::cout << n << "\n";
  return 0;
}

int run_demo(const demo_args& args) {
  auto cats = categories_of(args.taxonomy);
  if (!cats) {
    std::cerr << "triage demo: " << cats.error().message << "\n";
    return 2;
  }
  std::ifstream in(args.tickets);
  if (!in) {
    std::cerr << "triage demo: " << args.tickets << ": cannot open\n";
    return 2;
  }
  std::vector<std::string> records;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) records.push_back(line);
  }
  const size_t n_tickets = records.size();
  // Three records a broken producer might send, to show the dead-letter path.
  records.push_back(R"({"id": "BAD-1", "body": "my card was )");
  records.push_back(R"({"id": "BAD-2", "subject": "", "body": "   "})");
  records.push_back("\xff\xfe not a ticket");

  // librdkafka's in-process mock cluster: no broker to install or start.
  char err[512];
  rd_kafka_conf_t* mconf = rd_kafka_conf_new();
  rd_kafka_conf_set(mconf, "log_level", "3", err, sizeof err);
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> host(
      rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err), rd_kafka_destroy);
  if (!host) {
    std::cerr << "triage demo: " << err << "\n";
    return 1;
  }
  rd_kafka_mock_cluster_t* mock = rd_kafka_mock_cluster_new(host.get(), 1);
  if (!mock) {
    std::cerr << "triage demo: could not start librdkafka's mock cluster\n";
    return 1;
  }
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(mock);

  topology::config cfg;
  cfg.kafka.settings = {{"bootstrap.servers", bootstrap}};
  // The mock cluster has no transactional offset commits (librdkafka 2.0),
  // so the demo runs at-least-once; exactly-once is tested on a real broker.
  cfg.worker.delivery = topology::delivery_mode::at_least_once;
  cfg.worker.group_id = "triage-demo";
  cfg.worker.batch_max_wait_ms = 20;
  // Short sessions make the mock cluster's group join quick.
  cfg.kafka.settings["session.timeout.ms"] = "6000";
  cfg.topics.partitions = 3;
  for (const auto& t : topic_names(cfg, cats.value())) {
    rd_kafka_mock_topic_create(mock, t.c_str(), cfg.topics.partitions, 1);
  }

  std::cout << "triage demo: mock Kafka cluster at " << bootstrap << ", " << n_tickets
            << " tickets from " << args.tickets << " and 3 malformed records\n";
  {
    auto pconf = make_conf(cfg.kafka.settings, {{"enable.idempotence", "true"}});
    std::string e;
    std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(pconf.value().get(), e));
    if (!p) {
      std::cerr << "triage demo: producer: " << e << "\n";
      return 1;
    }
    for (size_t i = 0; i < records.size(); ++i) {
      const std::string key = "k" + std::to_string(i);
      p->produce(cfg.topics.tickets, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                 records[i].data(), records[i].size(), key.data(), key.size(), 0, nullptr);
    }
    p->flush(10000);
  }

  null_backend model(cats.value());
  std::cout << "backend: " << model.name()
            << " (no model yet: categories are a hash of the text, not predictions; "
               "the SLM classifier is issue #4)\n";
  kafka_worker::options opts;
  opts.worker_id = "demo";
  opts.max_records = records.size();
  opts.idle_exit_ms = 15000;
  auto w = kafka_worker::create(cfg, model, opts);
  if (!w) {
    std::cerr << "triage demo: " << w.error().message << "\n";
    return 1;
  }
  const auto started = std::chrono::steady_clock::now();
  std::atomic<bool> stop{false};
  auto done = w.value()->run(stop);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!done) {
    std::cerr << "triage demo: " << done.error().message << "\n";
    return 1;
  }
  const auto& s = w.value()->stats();
  const double busy = std::chrono::duration<double>(s.last_commit - s.first_record).count();
  std::printf("\nprocessed %llu records in %llu batches: %.2f s from first record to last commit "
              "(%.0f records/s), %.2f s in all with the consumer group join\n",
              static_cast<unsigned long long>(s.consumed), static_cast<unsigned long long>(s.batches),
              busy, busy > 0 ? static_cast<double>(s.consumed) / busy : 0.0, secs);
  std::cout << "  routed:        " << s.routed << "\n  escalated:     " << s.escalated
            << "\n  dead-lettered: " << s.dead_lettered << "\n\nby topic:\n";
  for (const auto& [topic, n] : s.by_topic) std::printf("  %-32s %4llu\n", topic.c_str(), static_cast<unsigned long long>(n));
  std::cout << "escalation and dead-letter reasons:\n";
  for (const auto& [reason, n] : s.by_reason) std::printf("  %-32s %4llu\n", reason.c_str(), static_cast<unsigned long long>(n));
  const bool all = s.consumed == records.size();
  w.value().reset();  // the worker's clients go before the cluster they talk to
  rd_kafka_mock_cluster_destroy(mock);
  return all ? 0 : 1;
}

}  // namespace triage::workers
