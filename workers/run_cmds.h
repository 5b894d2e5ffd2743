// run_cmds.h: `triage worker`, `triage topics create` and `triage demo`.
// Each returns the process exit status (0 ok, 1 failed, 2 bad input).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "topology/config.h"
#include "workers/backend.h"

namespace triage::workers {

// The classifier backend by name: "cpu" (the SLM: base model, default the
// installed one, plus adapter) or "null" (categories from the taxonomy CSV).
// Shared by `triage worker`, `triage demo` and `triage replay`.
// `shadow_adapter` (config shadow.adapter): a candidate adapter run beside
// `adapter` in shadow mode (workers/shadow.h); refused with the null backend
// and when it does not match the live adapter's base model and taxonomy.
result<std::unique_ptr<backend>> make_backend(const std::string& kind, const std::string& model,
                                              const std::string& adapter,
                                              const std::string& taxonomy, int threads,
                                              const std::string& shadow_adapter = "");

// The generate-mode backend (config mode: generate) from the config's
// generate section, categories from the taxonomy CSV; `kind` as
// generate_backend_options::backend (cpu, vulkan, vulkan-required).
result<std::unique_ptr<backend>> make_generate_backend(const topology::config& cfg,
                                                       const std::string& model,
                                                       const std::string& taxonomy, int threads,
                                                       const std::string& kind = "cpu");

// The backend the config's mode asks for, chosen as `triage worker` chooses
// it (and `triage replay`, so that a replay measures what a worker with the
// same config would run): with mode: generate and an SLM kind (cpu, vulkan,
// vulkan-required), make_generate_backend(); otherwise make_backend(), with
// the config's shadow.adapter when `shadow` is set. A shadow adapter with
// mode: generate is refused (bad_value): shadow mode compares heads.
result<std::unique_ptr<backend>> make_backend_for(const topology::config& cfg, const std::string& kind,
                                                  const std::string& model, const std::string& adapter,
                                                  const std::string& taxonomy, int threads,
                                                  bool shadow = false);

struct worker_args {
  std::string config = "topology/default.yaml";  // topology config file
  std::string backend = "cpu";                   // cpu (the SLM) or null (no model)
  std::string model;                             // base model; default: the installed one
  std::string adapter = "topology/adapters/banking.gguf";  // for the cpu backend
  std::string taxonomy = "data/banking77/taxonomy.csv";  // categories for the null and generate backends
  int threads = 0;                               // inference threads; 0: all
  std::string worker_id;                         // default: host name
  std::vector<std::string> settings;             // extra kafka settings, key=value
  uint64_t max_records = 0;                      // stop after this many (0: never)
  int idle_exit_ms = 0;                          // stop when idle this long (0: never)
  // host:port of /metrics, /healthz and /readyz; empty: no endpoint. Loopback
  // by default: the endpoint has no authentication (ops/README.md).
  std::string metrics_listen = "127.0.0.1:9464";
};

int run_worker(const worker_args& args);

struct topics_args {
  std::string config = "topology/default.yaml";
  std::string taxonomy = "data/banking77/taxonomy.csv";
  std::vector<std::string> settings;
  // An existing state changelog that is not compacted is an error, unless
  // this is set: then its cleanup.policy is changed to compact.
  bool compact_changelog = false;
};

int run_topics_create(const topics_args& args);

struct demo_args {
  std::string tickets = "data/demo/tickets.jsonl";
  std::string taxonomy = "data/banking77/taxonomy.csv";
  std::string backend = "cpu";                   // cpu (the SLM) or null
  std::string model;
  std::string adapter = "topology/adapters/banking.gguf";
};

int run_demo(const demo_args& args);

}  // namespace triage::workers
