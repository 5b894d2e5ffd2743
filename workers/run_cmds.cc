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
#include <algorithm>
#include <map>
#include <thread>

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include "compute/classifier/taxonomy.h"
#include "ops/metrics/endpoint.h"
#include "ops/metrics/probe.h"
#include "schemas/codec.h"
#include "schemas/utf8.h"
#include "workers/commands.h"
#include "workers/kafka_conf.h"
#include "workers/generate_backend.h"
#include "workers/slm_backend.h"
#include "workers/topics.h"
#include "workers/worker.h"

namespace triage::workers {
namespace {

std::atomic<bool> stop_requested{false};

extern "C" void on_stop_signal(int) { stop_requested.store(true); }

result<std::vector<std::string>> categories_of(const std::string& taxonomy_path) {
  auto tax = classifier::load_taxonomy(taxonomy_path);
  if (!tax) return tax.error();
  return tax.value().categories;
}

}  // namespace

// The classifier backend by name: "cpu" (the SLM with an adapter) or "null".
result<std::unique_ptr<backend>> make_backend(const std::string& kind, const std::string& model,
                                              const std::string& adapter,
                                              const std::string& taxonomy, int threads,
                                              const std::string& shadow_adapter) {
  auto with_shadow = [&](std::unique_ptr<slm_backend> b) -> result<std::unique_ptr<backend>> {
    if (!shadow_adapter.empty()) {
      if (auto ok = b->set_shadow(shadow_adapter); !ok) return ok.error();
    }
    return std::unique_ptr<backend>(std::move(b));
  };
  if (kind == "null") {
    if (!shadow_adapter.empty()) {
      return make_error(topology::errc::bad_value,
                        "shadow.adapter '" + shadow_adapter + "': shadow mode needs the SLM backend, not --backend null");
    }
    auto cats = categories_of(taxonomy);
    if (!cats) return cats.error();
    return std::unique_ptr<backend>(new null_backend(cats.value()));
  }
  if (kind == "cpu") {
    auto b = slm_backend::load({.model = model_path_or_default(model),
                                .adapter = adapter, .threads = threads});
    if (!b) return b.error();
    return with_shadow(std::move(b.value()));
  }
  // "vulkan": the SLM with its forward pass on a GPU; without a usable
  // device (no loader, no device, a missing feature, too little memory) it
  // logs why and runs on the CPU. "vulkan-required" fails instead.
  // TRIAGE_VULKAN_DEVICE picks the device (lavapipe: "llvmpipe").
  if (kind == "vulkan" || kind == "vulkan-required") {
    const classifier::engine_options eo{.model = model_path_or_default(model),
                                        .adapter = adapter, .threads = threads};
    auto b = slm_backend::load_vulkan(
        eo, {.device = {.pipeline_cache_dir = vulkan::default_pipeline_cache_dir()}});
    if (b) return with_shadow(std::move(b.value()));
    if (kind == "vulkan-required" || b.error().code.category() != vulkan::vulkan_category()) {
      return b.error();
    }
    spdlog::warn("--backend vulkan: {}; using the CPU engine", b.error().message);
    auto cpu = slm_backend::load(eo);
    if (!cpu) return cpu.error();
    return with_shadow(std::move(cpu.value()));
  }
  return make_error(topology::errc::bad_value,
                    "--backend '" + kind + "': expected cpu, vulkan, vulkan-required or null");
}

result<std::unique_ptr<backend>> make_generate_backend(const topology::config& cfg,
                                                       const std::string& model,
                                                       const std::string& taxonomy, int threads,
                                                       const std::string& kind) {
  generate_backend_options o;
  o.backend = kind;  // cpu, vulkan (falls back to the CPU, logged), vulkan-required
  o.device.device.pipeline_cache_dir = vulkan::default_pipeline_cache_dir();
  o.model = model_path_or_default(model);
  o.taxonomy = taxonomy;
  o.threads = threads;
  o.generate = cfg.generate;
  auto b = generate_backend::load(o);
  if (!b) return b.error();
  return std::unique_ptr<backend>(std::move(b.value()));
}

result<std::unique_ptr<backend>> make_backend_for(const topology::config& cfg, const std::string& kind,
                                                  const std::string& model, const std::string& adapter,
                                                  const std::string& taxonomy, int threads, bool shadow) {
  // mode: generate: the instruct model writes the JSON answer (CPU or
  // Vulkan); the null backend stays what it is.
  const std::string& shadow_adapter = shadow ? cfg.shadow.adapter : std::string();
  if (cfg.mode == topology::classifier_mode::generate && kind != "null") {
    if (!shadow_adapter.empty()) {
      return make_error(topology::errc::bad_value,
                        "shadow.adapter '" + shadow_adapter +
                            "': shadow mode runs a candidate head beside the live one (mode: head), "
                            "not with mode: generate");
    }
    return make_generate_backend(cfg, model, taxonomy, threads, kind);
  }
  return make_backend(kind, model, adapter, taxonomy, threads, shadow_adapter);
}

namespace {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "worker";
  return buf;
}

}  // namespace

int run_worker(const worker_args& args) {
  auto cfg = topology::load_config(args.config, args.settings);
  if (!cfg) {
    std::cerr << "triage worker: " << cfg.error().message << "\n";
    return 2;
  }
  // The endpoint first, so /healthz answers while the model loads; it
  // outlives the worker.
  auto mon = ops::endpoint::start({.listen = args.metrics_listen});
  if (!mon) {
    std::cerr << "triage worker: --metrics-listen '" << args.metrics_listen << "': " << mon.error().message << "\n";
    return 2;
  }
  auto& health = mon.value()->health();
  health.declare({"model"});
  if (!args.metrics_listen.empty()) {
    spdlog::info("worker: metrics on http://{}/metrics, health on /healthz and /readyz", mon.value()->address());
  }
  auto model = make_backend_for(cfg.value(), args.backend, args.model, args.adapter, args.taxonomy,
                                args.threads, /*shadow=*/true);
  if (!model) {
    std::cerr << "triage worker: " << model.error().message << "\n";
    return 2;
  }
  health.set("model", true);
  const std::string name = model.value()->name();  // "cpu", "null", "vulkan:<device>"
  const auto colon = name.find(':');

  // Mixed hardware: as many consumer instances as this machine's measured
  // throughput justifies (worker.instances: 0), so the group's partitions
  // spread over machines in proportion to their capacity.
  const auto& wc = cfg.value().worker;
  int instances = wc.instances;
  if (instances == 0) {
    const double capacity = measure_capacity(*model.value(), wc.batch_max_tickets);
    instances = instances_for(capacity, wc.instance_capacity, wc.max_instances);
    spdlog::info("worker: backend {}, measured {:.1f} tickets/s, {:.1f} per instance: {} instance(s)", name,
                 capacity, wc.instance_capacity, instances);
  } else {
    spdlog::info("worker: backend {}, {} instance(s) (worker.instances)", name, instances);
  }
  shared_backend shared(*model.value());

  struct instance {
    std::unique_ptr<ops::worker_probe> probe;
    std::unique_ptr<kafka_worker> worker;
    result<void> done = success();
  };
  std::vector<instance> all(static_cast<size_t>(instances));
  const auto& st = cfg.value().state;
  for (int i = 0; i < instances; ++i) {
    auto& in = all[static_cast<size_t>(i)];
    // One probe per instance thread (probes are not locked); they add up in
    // the shared registry.
    in.probe = std::make_unique<ops::worker_probe>(mon.value()->registry());
    in.probe->set_model(model.value()->model_version(), model.value()->adapter_version(), name.substr(0, colon),
                        colon == std::string::npos ? std::string() : name.substr(colon + 1));
    in.probe->drift_threshold("psi_category", st.psi_category_alert);
    in.probe->drift_threshold("psi_confidence", st.psi_confidence_alert);
    in.probe->drift_threshold("psi_length", st.psi_length_alert);
    in.probe->drift_threshold("psi_unknown", st.psi_unknown_alert);
    in.probe->escalation_rate_threshold(st.escalation_rate_alert);
    kafka_worker::options opts;
    opts.worker_id = args.worker_id.empty() ? host_name() : args.worker_id;
    opts.instance = i;
    opts.max_records = args.max_records;
    opts.idle_exit_ms = args.idle_exit_ms;
    opts.probe = in.probe.get();
    opts.health = &health;
    opts.health_check = instances == 1 ? "state" : "state:" + std::to_string(i);
    health.declare({opts.health_check});
    auto w = kafka_worker::create(cfg.value(), instances == 1 ? *model.value() : shared, opts);
    if (!w) {
      spdlog::error("worker: {}", w.error().message);
      return 1;
    }
    in.worker = std::move(w.value());
  }
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  {
    // An instance that ends (fenced, lost its state, idle) ends the process:
    // the others stop too, and a supervisor restarts it whole.
    const bool several = all.size() > 1;
    std::vector<std::thread> threads;
    for (size_t i = 1; i < all.size(); ++i) {
      threads.emplace_back([&in = all[i], several] {
        in.done = in.worker->run(stop_requested);
        if (several) stop_requested = true;
      });
    }
    all[0].done = all[0].worker->run(stop_requested);
    if (several) stop_requested = true;
    for (auto& t : threads) t.join();
  }
  int rc = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].done) {
      spdlog::error("worker instance {}: {}", i, all[i].done.error().message);
      rc = 1;
    }
  }
  return rc;
}

int run_topics_create(const topics_args& args) {
  auto cfg = topology::load_config(args.config, args.settings);
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
  // The state changelog (compacted, partitioned like the tickets topic).
  auto changelog = create_state_changelog(cfg.value(), 30000, args.compact_changelog);
  if (!changelog) {
    std::cerr << "triage topics create: " << changelog.error().message << "\n";
    return 1;
  }
  if (!changelog.value().empty()) std::cout << changelog.value() << "\n";
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

  auto model = make_backend(args.backend, args.model, args.adapter, args.taxonomy, 0);
  if (!model) {
    std::cerr << "triage demo: " << model.error().message << "\n";
    return 2;
  }
  std::cout << "backend: " << model.value()->name() << ", model " << model.value()->model_version()
            << ", adapter " << model.value()->adapter_version()
            << (args.backend == "null" ? " (null: categories are a hash of the text, not predictions)" : "")
            << "\n";
  kafka_worker::options opts;
  opts.worker_id = "demo";
  opts.max_records = records.size();
  opts.idle_exit_ms = 15000;
  auto w = kafka_worker::create(cfg, *model.value(), opts);
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
  // What happened to each ticket: read the outputs back.
  {
    auto cconf = make_conf(cfg.kafka.settings, {{"group.id", "triage-demo-reader"},
                                                {"auto.offset.reset", "earliest"}});
    std::string e;
    std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(cconf.value().get(), e));
    auto names = topic_names(cfg, cats.value());
    names.erase(names.begin());
    c->subscribe(names);
    std::vector<std::string> lines;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    // One line per ticket: no newlines, no invalid UTF-8 (dead letters hold
    // raw bytes), cut on a character boundary.
    auto clip = [](std::string t) {
      for (auto& ch : t) if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
      while (auto bad = schemas::first_invalid_utf8(t)) t[*bad] = '?';
      if (t.size() <= 48) return t;
      size_t cut = 45;
      while (cut > 0 && (static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) --cut;
      return t.substr(0, cut) + "...";
    };
    char buf[512];
    while (lines.size() < s.consumed && std::chrono::steady_clock::now() < deadline) {
      std::unique_ptr<RdKafka::Message> m(c->consume(200));
      if (m->err() != RdKafka::ERR_NO_ERROR) continue;
      const std::string v(static_cast<const char*>(m->payload()), m->len());
      if (m->topic_name() == cfg.topics.dead_letter) {
        v1::DeadLetter d;
        d.ParseFromString(v);
        std::snprintf(buf, sizeof buf, "  %-7s %-48s -> dead letter: %s", "-", clip(d.raw()).c_str(),
                      d.reason().c_str());
      } else if (m->topic_name() == cfg.topics.escalations) {
        v1::Escalation x;
        x.ParseFromString(v);
        const auto& attrs = x.ticket().attributes();
        auto truth = attrs.find("dataset_intent");
        std::snprintf(buf, sizeof buf, "  %-7s %-48s -> escalate (%s; draft %s %.2f)%s%s",
                      x.ticket().id().c_str(), clip(x.ticket().body()).c_str(),
                      x.detail().substr(0, x.detail().find(':')).c_str(),
                      x.draft().category().c_str(), static_cast<double>(x.draft().confidence()),
                      truth == attrs.end() ? "" : " label: ",
                      truth == attrs.end() ? "" : truth->second.c_str());
      } else {
        v1::RoutedTicket r;
        r.ParseFromString(v);
        const auto& attrs = r.ticket().attributes();
        auto truth = attrs.find("dataset_intent");
        std::snprintf(buf, sizeof buf, "  %-7s %-48s -> %s (%.2f)%s%s", r.ticket().id().c_str(),
                      clip(r.ticket().body()).c_str(), r.queue().c_str(),
                      static_cast<double>(r.result().confidence()),
                      truth == attrs.end() ? "" : " label: ",
                      truth == attrs.end() ? "" : truth->second.c_str());
      }
      lines.emplace_back(buf);
    }
    c->close();
    std::sort(lines.begin(), lines.end());
    std::cout << "\nper ticket (id, text, decision, dataset label):\n";
    for (const auto& l : lines) std::cout << l << "\n";
  }
  const bool all = s.consumed == records.size();
  w.value().reset();  // the worker's clients go before the cluster they talk to
  rd_kafka_mock_cluster_destroy(mock);
  return all ? 0 : 1;
}

}  // namespace triage::workers
