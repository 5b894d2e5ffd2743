// latency_bench: the worker with the SLM under a steady offered load. On one
// broker, in one run, it
//   1. measures the backend's capacity (tickets/s) on a sample of tickets,
//   2. produces tickets at a steady rate below that (--load, a share of the
//      capacity, or --rate) while the worker consumes, classifies, routes
//      and commits,
//   3. reads the outputs with read_committed and, for every ticket, takes
//      the time from its produce call to the moment its routed event or
//      escalation became readable,
// and prints tickets/s and the latency percentiles. A benchmark, not a test.
//
//   latency_bench --bootstrap 127.0.0.1:9092 [--tickets 400] [--load 0.5]
//                 [--adapter topology/adapters/banking.gguf]
//                 [--data data/banking77/train.csv] [--delivery exactly_once]
//   (ops/bench.sh latency starts a broker and runs it)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include "compute/classifier/adapter.h"
#include "workers/bench/bench_util.h"
#include "workers/commands.h"
#include "workers/kafka_conf.h"
#include "workers/slm_backend.h"
#include "workers/topics.h"
#include "workers/worker.h"

using namespace triage;
using bench::clock_type;

int main(int argc, char** argv) {
  CLI::App app{"latency_bench: SLM worker latency and throughput at a steady offered load"};
  std::string bootstrap = "127.0.0.1:9092", delivery = "exactly_once";
  std::string model_path, adapter = "topology/adapters/banking.gguf", data = "data/banking77/train.csv";
  int tickets = 400, partitions = 4, batch = 32, wait_ms = 50, threads = 0;
  double load = 0.5, rate = 0;
  app.add_option("--bootstrap", bootstrap)->capture_default_str();
  app.add_option("--model", model_path, "GGUF model (default: the installed one)");
  app.add_option("--adapter", adapter)->capture_default_str();
  app.add_option("--data", data, "CSV with a text column: the tickets")->capture_default_str();
  app.add_option("--tickets", tickets)->capture_default_str();
  app.add_option("--load", load, "offered load as a share of the measured capacity")->capture_default_str();
  app.add_option("--rate", rate, "offered load in tickets/s (overrides --load)");
  app.add_option("--partitions", partitions)->capture_default_str();
  app.add_option("--batch", batch, "worker.batch_max_tickets")->capture_default_str();
  app.add_option("--wait-ms", wait_ms, "worker.batch_max_wait_ms")->capture_default_str();
  app.add_option("--threads", threads, "inference threads, 0: all")->capture_default_str();
  app.add_option("--delivery", delivery, "exactly_once or at_least_once")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  auto tickets_read = bench::load_tickets(data, static_cast<size_t>(tickets));
  if (!tickets_read) {
    std::fprintf(stderr, "latency_bench: %s\n", tickets_read.error().message.c_str());
    return 1;
  }
  const std::vector<v1::TicketEvent> pool = std::move(tickets_read.value());

  auto loaded = workers::slm_backend::load(
      {.model = workers::model_path_or_default(model_path), .adapter = adapter, .threads = threads, .batch = batch});
  if (!loaded) {
    std::fprintf(stderr, "latency_bench: %s\n", loaded.error().message.c_str());
    return 1;
  }
  auto& model = *loaded.value();
  const double cap = bench::capacity(model, std::vector(pool.begin(), pool.begin() + std::min<size_t>(pool.size(), 128)), batch);
  const double offered = rate > 0 ? rate : load * cap;

  topology::config cfg;
  cfg.kafka.settings = {{"bootstrap.servers", bootstrap}};
  cfg.worker.delivery = delivery == "exactly_once" ? topology::delivery_mode::exactly_once
                                                   : topology::delivery_mode::at_least_once;
  cfg.worker.batch_max_tickets = batch;
  cfg.worker.batch_max_wait_ms = wait_ms;
  cfg.topics.partitions = partitions;
  const std::string prefix = bench::unique("latency");
  bench::name_topics(cfg, prefix);
  auto info = classifier::load_adapter(adapter);
  if (!info) {
    std::fprintf(stderr, "latency_bench: %s\n", info.error().message.c_str());
    return 1;
  }
  auto names = workers::topic_names(cfg, info.value().categories);
  if (auto ok = workers::create_topics(cfg, names); !ok) {
    std::fprintf(stderr, "latency_bench: %s\n", ok.error().message.c_str());
    return 1;
  }

  // The reader: every output topic, read_committed, from the start.
  auto reader = bench::output_reader(cfg, std::vector<std::string>(names.begin() + 1, names.end()));
  if (!reader) {
    std::fprintf(stderr, "latency_bench: cannot create the output reader for %s\n", bootstrap.c_str());
    return 1;
  }

  auto w = workers::kafka_worker::create(cfg, model, {.worker_id = prefix, .max_records = pool.size()});
  if (!w) {
    std::fprintf(stderr, "latency_bench: %s\n", w.error().message.c_str());
    return 1;
  }
  std::atomic<bool> stop{false};
  std::thread worker([&] {
    if (auto done = w.value()->run(stop); !done) {
      std::fprintf(stderr, "latency_bench: worker: %s\n", done.error().message.c_str());
    }
  });

  // Wait until the worker and the reader have joined their groups, so
  // the group joins are not part of the latency.
  for (int i = 0; i < 60; ++i) std::unique_ptr<RdKafka::Message>(reader->consume(100));

  std::vector<clock_type::time_point> sent(pool.size());
  std::vector<double> latency_ms(pool.size(), -1);
  std::thread producer([&] {
    auto pconf = workers::make_conf(cfg.kafka.settings, {{"enable.idempotence", "true"}, {"linger.ms", "0"}});
    std::string e;
    std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(pconf.value().get(), e));
    const auto start = clock_type::now();
    for (size_t i = 0; i < pool.size(); ++i) {
      const auto due = start + std::chrono::duration_cast<clock_type::duration>(
                                   std::chrono::duration<double>(static_cast<double>(i) / offered));
      std::this_thread::sleep_until(due);
      const std::string v = pool[i].SerializeAsString(), k = pool[i].id();
      sent[i] = clock_type::now();
      p->produce(cfg.topics.tickets, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                 const_cast<char*>(v.data()), v.size(), k.data(), k.size(), 0, nullptr);
      p->poll(0);
    }
    p->flush(60000);
  });

  size_t received = 0;
  clock_type::time_point first_sent{}, last_received{};
  const auto deadline = clock_type::now() + std::chrono::seconds(60) +
                        std::chrono::duration_cast<clock_type::duration>(
                            std::chrono::duration<double>(3.0 * static_cast<double>(pool.size()) / offered));
  while (received < pool.size() && clock_type::now() < deadline) {
    std::unique_ptr<RdKafka::Message> m(reader->consume(50));
    if (m->err() != RdKafka::ERR_NO_ERROR || !m->key()) continue;
    const auto now = clock_type::now();
    const std::string& key = *m->key();
    if (key.rfind("T-", 0) != 0) continue;
    const size_t i = std::stoul(key.substr(2));
    if (i >= pool.size() || latency_ms[i] >= 0) continue;
    latency_ms[i] = std::chrono::duration<double, std::milli>(now - sent[i]).count();
    last_received = now;
    ++received;
  }
  producer.join();
  stop = received < pool.size();  // let a stuck worker go
  worker.join();
  reader->close();
  first_sent = sent.front();

  std::vector<double> got;
  for (double l : latency_ms) {
    if (l >= 0) got.push_back(l);
  }
  const double span = std::chrono::duration<double>(last_received - first_sent).count();
  std::printf("latency_bench: %zu tickets from %s, model %s, adapter %s, %s, batch <= %d, wait %d ms, %d threads\n",
              pool.size(), data.c_str(), model.model_version().c_str(), model.adapter_version().c_str(),
              delivery.c_str(), batch, wait_ms, threads);
  std::printf("  %-34s %8.1f tickets/s\n", "backend capacity (classify only)", cap);
  std::printf("  %-34s %8.1f tickets/s (%.0f%% of capacity)\n", "offered load", offered, 100 * offered / cap);
  std::printf("  %-34s %8.1f tickets/s\n", "end-to-end throughput", static_cast<double>(got.size()) / span);
  std::printf("  %-34s %8.0f / %.0f / %.0f / %.0f ms\n", "latency p50 / p90 / p99 / max",
              bench::percentile(got, 0.5), bench::percentile(got, 0.9), bench::percentile(got, 0.99),
              bench::percentile(got, 1.0));
  if (got.size() < pool.size()) {
    std::printf("  %zu tickets did not arrive in time\n", pool.size() - got.size());
    return 1;
  }
  return 0;
}
