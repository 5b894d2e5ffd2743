// soak_bench: the in-process worker (workers/worker.h) under a steady offered
// load for a long time, to see that throughput, latency and memory stay flat.
// On one broker it
//   1. starts a kafka_worker with the deployment's config (default.yaml:
//      exactly-once, state on, its store in a temporary directory) and the
//      `null` backend, or the SLM with --slm;
//   2. produces tickets (bodies from a CSV, cycled; ids T-<n>) at --rate
//      tickets/s (null: 500/s; SLM: --load x the measured capacity) for
//      --minutes, while a read_committed reader takes, for every ticket, the
//      time from its produce call to the moment its output became readable;
//   3. every --interval seconds prints one line: elapsed time, tickets
//      produced and routed in the interval, throughput, p50/p99 latency of
//      the interval, the process RSS (VmRSS), the state store's RocksDB
//      memory (the worker's triage_state_memory_bytes gauge) and the
//      worker's queue depth;
//   4. at the end prints the RSS trend: the least-squares slope over the
//      second half of the run (MB/h) and the growth from the end of the
//      warm-up to the end.
// The RSS is the whole process's: worker, librdkafka, RocksDB and this
// program, whose own memory is allocated up front (no per-ticket growth).
// A benchmark, not a test.
//
//   soak_bench --bootstrap 127.0.0.1:9092 [--minutes 10] [--interval 30]
//              [--rate 500] [--slm [--load 0.7]] [--delivery exactly_once]
//              [--no-state] [--malloc-trim] [--heap-dump PREFIX]
//   Each line also has the allocator's bytes in use (heap MB) and held from
//   the system (held MB): glibc's mallinfo2, or jemalloc's stats when it is
//   LD_PRELOADed; held - heap is free memory the allocator keeps.
//   (ops/bench.sh soak starts a broker and runs it)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <dlfcn.h>
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <librdkafka/rdkafkacpp.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "compute/classifier/adapter.h"
#include "ops/metrics/probe.h"
#include "topology/config.h"
#include "workers/bench/bench_util.h"
#include "workers/commands.h"
#include "workers/kafka_conf.h"
#include "workers/slm_backend.h"
#include "workers/topics.h"
#include "workers/worker.h"

namespace {

using namespace triage;
using bench::clock_type;

// VmRSS of this process in MB, from /proc/self/status; 0 if unreadable.
double rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  return 0;
}

// The allocator's own figures in MB: bytes handed out (in use) and bytes it
// holds from the system (held; held - in use is free memory it keeps, i.e.
// fragmentation). jemalloc's stats.allocated / stats.resident when jemalloc is
// preloaded (found through mallctl), else glibc's mallinfo2 (all arenas).
struct heap_figures {
  double in_use_mb = 0;
  double held_mb = 0;
};
using mallctl_fn = int (*)(const char*, void*, size_t*, void*, size_t);
mallctl_fn jemalloc_ctl() { return reinterpret_cast<mallctl_fn>(dlsym(RTLD_DEFAULT, "mallctl")); }
heap_figures heap() {
  if (auto ctl = jemalloc_ctl()) {
    uint64_t epoch = 1;
    size_t len = sizeof(epoch);
    ctl("epoch", &epoch, &len, &epoch, len);  // refreshes the stats
    size_t allocated = 0, resident = 0;
    len = sizeof(size_t);
    ctl("stats.allocated", &allocated, &len, nullptr, 0);
    len = sizeof(size_t);
    ctl("stats.resident", &resident, &len, nullptr, 0);
    return {static_cast<double>(allocated) / (1 << 20), static_cast<double>(resident) / (1 << 20)};
  }
  const struct mallinfo2 m = mallinfo2();
  return {static_cast<double>(m.uordblks + m.hblkhd) / (1 << 20), static_cast<double>(m.arena + m.hblkhd) / (1 << 20)};
}

// With jemalloc preloaded and MALLOC_CONF=prof:true, dumps a heap profile to
// PREFIX.N.heap (for jeprof --base); a no-op otherwise.
void heap_dump(const std::string& prefix, int n) {
  auto ctl = jemalloc_ctl();
  if (!ctl || prefix.empty()) return;
  std::string file = prefix + "." + std::to_string(n) + ".heap";
  const char* name = file.c_str();
  ctl("prof.dump", nullptr, nullptr, &name, sizeof(name));
}

struct rss_sample {
  double t_s;
  double mb;
};

// Least-squares slope of mb over t_s, in MB/s; 0 for fewer than 2 samples.
double slope(const std::vector<rss_sample>& s) {
  if (s.size() < 2) return 0;
  double mt = 0, mm = 0;
  for (const auto& x : s) {
    mt += x.t_s;
    mm += x.mb;
  }
  mt /= static_cast<double>(s.size());
  mm /= static_cast<double>(s.size());
  double num = 0, den = 0;
  for (const auto& x : s) {
    num += (x.t_s - mt) * (x.mb - mm);
    den += (x.t_s - mt) * (x.t_s - mt);
  }
  return den > 0 ? num / den : 0;
}

// The value of an unlabelled gauge in `r`, or -1 if absent.
double gauge_value(prometheus::Registry& r, const std::string& name) {
  for (const auto& f : r.Collect()) {
    if (f.name == name && !f.metric.empty()) return f.metric.front().gauge.value;
  }
  return -1;
}

double secs(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"soak_bench: the worker at a steady offered load for a long time: throughput, latency, RSS"};
  std::string bootstrap = "127.0.0.1:9092", delivery, config_path = "topology/default.yaml";
  std::string model_path, adapter = "topology/adapters/banking.gguf", data = "data/banking77/train.csv";
  double minutes = 10, interval = 30, warmup = 0, rate = 0, load = 0.7;
  int partitions = 0, threads = 0, state_budget_mb = 0;
  bool slm = false, no_state = false, trim = false;
  std::string dump_prefix;
  int dumps = 0;
  app.add_option("--bootstrap", bootstrap)->capture_default_str();
  app.add_option("--config", config_path, "deployment config (delivery, batching, state)")->capture_default_str();
  app.add_option("--minutes", minutes, "how long to offer load")->capture_default_str();
  app.add_option("--interval", interval, "seconds between report lines")->capture_default_str();
  app.add_option("--warmup", warmup, "seconds before the RSS baseline (default: one interval)");
  app.add_option("--rate", rate, "offered load in tickets/s (default: 500 for null, --load x capacity for --slm)");
  app.add_flag("--no-state", no_state, "turn the state store off (to see what it holds in memory)");
  app.add_option("--state-budget", state_budget_mb, "state.memory_budget_mb in MB (default: the config's)");
  app.add_flag("--malloc-trim", trim, "call malloc_trim(0) before each line (glibc: does freed heap go back?)");
  app.add_option("--heap-dump", dump_prefix,
                 "with jemalloc preloaded and MALLOC_CONF=prof:true: a heap profile PREFIX.N.heap at each line");
  app.add_flag("--slm", slm, "classify with the SLM instead of the null backend");
  app.add_option("--load", load, "--slm: offered load as a share of the measured capacity")->capture_default_str();
  app.add_option("--model", model_path, "--slm: GGUF model (default: the installed one)");
  app.add_option("--adapter", adapter, "adapter (its categories name the routed topics)")->capture_default_str();
  app.add_option("--threads", threads, "--slm: inference threads, 0: all")->capture_default_str();
  app.add_option("--data", data, "CSV with a text column: the ticket bodies")->capture_default_str();
  app.add_option("--partitions", partitions, "input partitions (default: the config's)");
  app.add_option("--delivery", delivery, "exactly_once or at_least_once (default: the config's)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  if (warmup <= 0) warmup = interval;

  auto loaded_cfg = topology::load_config(config_path);
  if (!loaded_cfg) {
    std::fprintf(stderr, "soak_bench: %s\n", loaded_cfg.error().message.c_str());
    return 1;
  }
  topology::config cfg = loaded_cfg.value();
  cfg.kafka.settings["bootstrap.servers"] = bootstrap;
  if (!delivery.empty()) {
    if (delivery != "exactly_once" && delivery != "at_least_once") {
      std::fprintf(stderr, "soak_bench: --delivery %s: expected exactly_once or at_least_once\n", delivery.c_str());
      return 2;
    }
    cfg.worker.delivery = delivery == "exactly_once" ? topology::delivery_mode::exactly_once
                                                     : topology::delivery_mode::at_least_once;
  }
  if (partitions > 0) cfg.topics.partitions = partitions;
  const std::string prefix = bench::unique("soak");
  bench::name_topics(cfg, prefix);
  const std::filesystem::path state_dir = std::filesystem::temp_directory_path() / (prefix + "-state");
  cfg.state.directory = state_dir.string();
  cfg.state.changelog_topic = prefix + ".changelog";
  if (no_state) cfg.state.enabled = false;
  if (state_budget_mb > 0) cfg.state.memory_budget_mb = state_budget_mb;

  auto pool = bench::load_tickets(data, 0);
  if (!pool) {
    std::fprintf(stderr, "soak_bench: %s\n", pool.error().message.c_str());
    return 1;
  }
  auto info = classifier::load_adapter(adapter);
  if (!info) {
    std::fprintf(stderr, "soak_bench: %s\n", info.error().message.c_str());
    return 1;
  }
  std::unique_ptr<workers::backend> model;
  double cap = 0;
  if (slm) {
    auto loaded = workers::slm_backend::load({.model = workers::model_path_or_default(model_path),
                                              .adapter = adapter,
                                              .threads = threads,
                                              .batch = cfg.worker.batch_max_tickets});
    if (!loaded) {
      std::fprintf(stderr, "soak_bench: %s\n", loaded.error().message.c_str());
      return 1;
    }
    model = std::move(loaded.value());
    const size_t n = std::min<size_t>(pool.value().size(), 128);
    cap = bench::capacity(*model, std::vector(pool.value().begin(), pool.value().begin() + static_cast<long>(n)),
                          cfg.worker.batch_max_tickets);
  } else {
    model = std::make_unique<workers::null_backend>(info.value().categories);
  }
  const double offered = rate > 0 ? rate : slm ? load * cap : 500.0;
  // Each ticket once, serialized up front; the id is set per produce call.
  std::vector<std::string> bodies;
  for (const auto& t : pool.value()) bodies.push_back(t.body());

  auto names = workers::topic_names(cfg, info.value().categories);
  if (auto ok = workers::create_topics(cfg, names); !ok) {
    std::fprintf(stderr, "soak_bench: %s\n", ok.error().message.c_str());
    return 1;
  }
  auto reader = bench::output_reader(cfg, std::vector<std::string>(names.begin() + 1, names.end()));
  if (!reader) {
    std::fprintf(stderr, "soak_bench: cannot create the output reader for %s\n", bootstrap.c_str());
    return 1;
  }
  // The worker reports to a probe as in production; the state store's
  // memory (triage_state_memory_bytes) goes into the report lines.
  prometheus::Registry registry;
  ops::worker_probe probe(registry);
  auto w = workers::kafka_worker::create(cfg, *model, {.worker_id = prefix, .probe = &probe});
  if (!w) {
    std::fprintf(stderr, "soak_bench: %s\n", w.error().message.c_str());
    return 1;
  }
  std::atomic<bool> stop{false};
  std::thread worker([&] {
    if (auto done = w.value()->run(stop); !done) {
      std::fprintf(stderr, "soak_bench: worker: %s\n", done.error().message.c_str());
    }
  });
  // Let the worker and the reader join their groups before the clock starts.
  for (int i = 0; i < 60; ++i) std::unique_ptr<RdKafka::Message>(reader->consume(100));

  std::printf("soak_bench: %s backend (model %s, adapter %s), %s, state %s (budget %d MB), %d partitions, "
              "batch <= %d, wait %d ms, queue <= %d\n",
              model->name().c_str(), model->model_version().c_str(), model->adapter_version().c_str(),
              cfg.worker.delivery == topology::delivery_mode::exactly_once ? "exactly_once" : "at_least_once",
              cfg.state.enabled ? "on" : "off", cfg.state.memory_budget_mb, cfg.topics.partitions,
              cfg.worker.batch_max_tickets, cfg.worker.batch_max_wait_ms, cfg.worker.queue_max_tickets);
  if (slm) std::printf("  backend capacity (classify only): %.1f tickets/s\n", cap);
  std::printf("  offered %.1f tickets/s for %.1f min, a line every %.0f s, RSS baseline after %.0f s\n", offered,
              minutes, interval, warmup);
  std::printf("  %8s %9s %9s %10s %8s %8s %8s %8s %6s %6s %8s %8s\n", "elapsed", "produced", "routed", "tickets/s",
              "p50 ms", "p99 ms", "RSS MB", "state MB", "queue", "paused", "heap MB", "held MB");
  std::fflush(stdout);

  // Send times by ticket number, in a ring allocated up front (steady_clock
  // ns; 0: not sent or already received, so duplicates count once).
  constexpr size_t ring_size = size_t{1} << 21;
  std::vector<std::atomic<int64_t>> sent(ring_size);
  std::atomic<uint64_t> produced{0};
  const auto start = clock_type::now();
  const auto produce_end = start + std::chrono::duration_cast<clock_type::duration>(
                                       std::chrono::duration<double>(minutes * 60));
  std::thread producer([&] {
    auto pconf = workers::make_conf(cfg.kafka.settings, {{"enable.idempotence", "true"}, {"linger.ms", "0"}});
    std::string e;
    std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(pconf.value().get(), e));
    v1::TicketEvent t;
    std::string v;
    for (uint64_t i = 0;; ++i) {
      const auto due = start + std::chrono::duration_cast<clock_type::duration>(
                                   std::chrono::duration<double>(static_cast<double>(i) / offered));
      if (due >= produce_end) break;
      std::this_thread::sleep_until(due);
      t.set_id("T-" + std::to_string(i));
      t.set_body(bodies[i % bodies.size()]);
      t.SerializeToString(&v);
      const std::string& k = t.id();
      const auto now = clock_type::now();
      sent[i % ring_size].store(std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count());
      while (p->produce(cfg.topics.tickets, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                        const_cast<char*>(v.data()), v.size(), k.data(), k.size(), 0, nullptr) ==
             RdKafka::ERR__QUEUE_FULL) {
        p->poll(10);
      }
      produced.fetch_add(1);
      p->poll(0);
    }
    p->flush(60000);
  });

  std::vector<double> lat_ms;  // this interval's
  lat_ms.reserve(1 << 20);
  std::vector<rss_sample> rss;
  rss.reserve(static_cast<size_t>(minutes * 60 + 600));
  uint64_t received = 0, last_produced = 0, last_received = 0;
  double worst_p99 = 0, worst_queue = 0;
  auto next_line = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(interval));
  auto next_rss = start;
  auto last_line = start;
  const auto drain_end = produce_end + std::chrono::seconds(60);
  auto print_line = [&](clock_type::time_point now) {
    const uint64_t p = produced.load();
    const double span = secs(now - last_line);
    const auto bp = w.value()->backpressure();
    const double p99 = bench::percentile(lat_ms, 0.99);
    if (secs(last_line - start) + 1e-3 >= warmup) worst_p99 = std::max(worst_p99, p99);  // after warm-up
    worst_queue = std::max(worst_queue, static_cast<double>(bp.queued_tickets));
    const double state_mb = gauge_value(registry, "triage_state_memory_bytes") / (1024.0 * 1024.0);
    if (trim) malloc_trim(0);
    heap_dump(dump_prefix, dumps++);
    const heap_figures h = heap();
    std::printf("  %7.0fs %9llu %9llu %10.1f %8.0f %8.0f %8.1f %8.1f %6llu %6llu %8.1f %8.1f\n", secs(now - start),
                static_cast<unsigned long long>(p - last_produced),
                static_cast<unsigned long long>(received - last_received),
                static_cast<double>(received - last_received) / span, bench::percentile(lat_ms, 0.5), p99, rss_mb(),
                state_mb,
                static_cast<unsigned long long>(bp.queued_tickets),
                static_cast<unsigned long long>(bp.paused_partitions), h.in_use_mb, h.held_mb);
    std::fflush(stdout);
    last_produced = p;
    last_received = received;
    last_line = now;
    lat_ms.clear();
  };
  for (;;) {
    const auto now = clock_type::now();
    if (now >= next_rss) {
      rss.push_back({secs(now - start), rss_mb()});
      next_rss += std::chrono::seconds(1);
    }
    if (now >= next_line) {
      print_line(now);
      next_line += std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(interval));
    }
    if (now >= produce_end && (received >= produced.load() || now >= drain_end)) break;
    std::unique_ptr<RdKafka::Message> m(reader->consume(50));
    if (m->err() != RdKafka::ERR_NO_ERROR || !m->key()) continue;
    const std::string& key = *m->key();
    if (key.rfind("T-", 0) != 0) continue;
    const uint64_t i = std::stoull(key.substr(2));
    const int64_t at = sent[i % ring_size].exchange(0);
    if (at == 0) continue;
    const auto got = clock_type::now();
    lat_ms.push_back(
        std::chrono::duration<double, std::milli>(got.time_since_epoch() - std::chrono::nanoseconds(at)).count());
    ++received;
  }
  const auto end = clock_type::now();
  if (secs(end - last_line) >= 1) print_line(end);  // the drain after the last full interval
  rss.push_back({secs(end - start), rss_mb()});
  producer.join();
  stop = true;
  worker.join();
  reader->close();
  std::error_code ec;
  std::filesystem::remove_all(state_dir, ec);

  const double run_s = secs(end - start);
  std::vector<rss_sample> second_half, after_warmup;
  for (const auto& s : rss) {
    if (s.t_s >= run_s / 2) second_half.push_back(s);
    if (s.t_s >= warmup) after_warmup.push_back(s);
  }
  const uint64_t total = produced.load();
  std::printf("  produced %llu, routed %llu (%llu missing), %.1f tickets/s over %.1f min; worst p99 after warm-up "
              "%.0f ms, deepest queue at a line %.0f\n",
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(received),
              static_cast<unsigned long long>(total - std::min(total, received)),
              static_cast<double>(received) / run_s, run_s / 60, worst_p99, worst_queue);
  if (after_warmup.size() >= 2) {
    const double growth = after_warmup.back().mb - after_warmup.front().mb;
    std::printf("  RSS %.1f MB at %.0f s, %.1f MB at the end, peak %.1f MB\n", after_warmup.front().mb,
                after_warmup.front().t_s, after_warmup.back().mb,
                std::max_element(rss.begin(), rss.end(), [](auto& a, auto& b) { return a.mb < b.mb; })->mb);
    std::printf("RSS growth: %+.1f MB over %.1f min (slope %+.1f MB/h over the second half)\n", growth,
                (after_warmup.back().t_s - after_warmup.front().t_s) / 60, 3600 * slope(second_half));
  } else {
    std::printf("RSS growth: run too short for a trend (warm-up %.0f s, run %.0f s)\n", warmup, run_s);
  }
  return received >= total ? 0 : 1;
}
