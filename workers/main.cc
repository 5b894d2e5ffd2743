// triage: one binary, one subcommand per job. See README.md.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <CLI/CLI.hpp>

#include "ops/logging.h"
#include "schemas/codec.h"
#include "workers/commands.h"
#include "workers/run_cmds.h"
#include "workers/tokenize_cmd.h"

namespace {

struct planned {
  const char* name;
  const char* what;
  int issue;
};

// Subcommands whose implementation has not landed yet. Each says so plainly
// and exits 2, so scripts cannot mistake it for success.
constexpr planned not_built_yet[] = {
    {"generate", "greedy text generation from a prompt", 3},
    {"embed", "pooled hidden states of tickets", 3},
    {"bench", "inference throughput and latency against llama.cpp", 3},
    {"train", "train classifier heads and calibrate an adapter", 4},
    {"classify", "classify tickets from a file into JSONL", 4},
    {"state", "escalation rate, drift and accuracy from the state store", 7},
    {"retrain", "train and evaluate a candidate adapter from corrections", 7},
    {"replay", "replay files or Kafka ranges through the pipeline and report", 8},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"triage: route support tickets with small language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(TRIAGE_VERSION));
  bool json_logs = false;
  app.add_flag("--json-logs", json_logs, "structured JSON logs on stderr");

  auto* decode = app.add_subcommand(
      "decode", "decode ticket records (protobuf or JSON, one file each) and print them as JSON");
  std::vector<std::string> files;
  decode->add_option("files", files, "record files; '-' reads one record from stdin")->required();
  decode->callback([&] { std::exit(triage::workers::run_decode(files)); });

  auto* devices = app.add_subcommand("devices", "list the compute devices found, with features");
  devices->callback([&] { std::exit(triage::workers::run_devices()); });

  std::string tok_model;
  bool tok_special = false, tok_bos = false;
  auto* tokenize = app.add_subcommand(
      "tokenize", "print the token ids of each line of stdin, space-separated, one line each");
  tokenize->add_option("--model", tok_model,
                       "GGUF model file (default: $TRIAGE_MODEL, else the one ops/setup.sh installed)");
  tokenize->add_flag("--special", tok_special, "recognise special tokens such as <|im_start|>");
  tokenize->add_flag("--bos", tok_bos, "add the model's BOS token where it wants one");
  tokenize->callback([&] {
    std::exit(triage::workers::run_tokenize(tok_model, tok_special, tok_bos));
  });

  triage::workers::worker_args wargs;
  auto* worker = app.add_subcommand(
      "worker", "consume tickets from Kafka, classify, route, escalate, dead-letter");
  worker->add_option("--config", wargs.config, "topology config (YAML)")->capture_default_str();
  worker->add_option("--backend", wargs.backend, "classifier backend: null (cpu, vulkan: issue #4)")
      ->capture_default_str();
  worker->add_option("--taxonomy", wargs.taxonomy, "taxonomy CSV (categories for the null backend)")
      ->capture_default_str();
  worker->add_option("--worker-id", wargs.worker_id,
                     "stable id of this worker (transactional ids); default: host name");
  worker->add_option("--set", wargs.settings, "extra Kafka setting key=value (repeatable)");
  worker->add_option("--max-records", wargs.max_records, "stop after this many records");
  worker->add_option("--idle-exit-ms", wargs.idle_exit_ms, "stop when no record came for this long");
  worker->callback([&] { std::exit(triage::workers::run_worker(wargs)); });

  triage::workers::topics_args targs;
  auto* topics = app.add_subcommand("topics", "manage the topics of a topology");
  topics->require_subcommand(1);
  auto* create = topics->add_subcommand("create", "create the topics the topology needs");
  create->add_option("--config", targs.config, "topology config (YAML)")->capture_default_str();
  create->add_option("--taxonomy", targs.taxonomy, "taxonomy CSV (one routed topic per queue)")
      ->capture_default_str();
  create->add_option("--set", targs.settings, "extra Kafka setting key=value (repeatable)");
  create->callback([&] { std::exit(triage::workers::run_topics_create(targs)); });

  triage::workers::demo_args dargs;
  auto* demo = app.add_subcommand(
      "demo", "the embedded default: in-process mock Kafka, sample tickets, one worker");
  demo->add_option("--tickets", dargs.tickets, "JSONL tickets to publish")->capture_default_str();
  demo->add_option("--taxonomy", dargs.taxonomy, "taxonomy CSV")->capture_default_str();
  demo->callback([&] { std::exit(triage::workers::run_demo(dargs)); });

  for (const auto& p : not_built_yet) {
    auto* sub = app.add_subcommand(p.name, std::string(p.what) + " [not built yet]");
    sub->allow_extras();
    sub->callback([p] {
      std::fprintf(stderr,
                   "triage %s: not built yet. It will %s; tracked in issue #%d.\n",
                   p.name, p.what, p.issue);
      std::exit(2);
    });
  }

  app.parse_complete_callback([&] { triage::ops::init_logging({.json = json_logs}); });
  CLI11_PARSE(app, argc, argv);
  return 0;
}
