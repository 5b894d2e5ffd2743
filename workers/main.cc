// triage: one binary, one subcommand per job. See README.md.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ops/logging.h"
#include "replay/replay_cmds.h"
#include "schemas/codec.h"
#include "workers/classify_cmds.h"
#include "workers/commands.h"
#include "workers/generate_cmds.h"
#include "workers/model_cmds.h"
#include "workers/retrain_cmds.h"
#include "workers/run_cmds.h"
#include "workers/state_cmds.h"
#include "workers/tokenize_cmd.h"

namespace {

struct planned {
  const char* name;
  const char* what;
  int issue;
};

// Subcommands whose implementation has not landed yet. Each says so plainly
// and exits 2, so scripts cannot mistake it for success.
const std::vector<planned> not_built_yet{};

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

  triage::workers::generate_args ga;
  auto* generate = app.add_subcommand("generate", "greedy text generation from a prompt");
  generate->add_option("--model", ga.model, "GGUF model (default: the installed one)");
  generate->add_option("--prompt", ga.prompt, "prompt text (or ids with --ids)")->required();
  generate->add_option("--tokens", ga.n_tokens, "new tokens at most")->capture_default_str();
  generate->add_option("--threads", ga.threads, "0: one per hardware thread")->capture_default_str();
  generate->add_flag("--ids", ga.ids, "the prompt is token ids");
  generate->add_flag("--chat", ga.chat, "wrap the prompt as a user turn in the model's chat format (ChatML, Gemma turns)");
  generate->add_option("--lora", ga.loras, "LoRA adapter GGUF merged at load (repeatable)");
  generate->add_option("--lora-scale", ga.lora_scale, "scale of the LoRA adapters")->capture_default_str();
  generate->callback([&] { std::exit(triage::workers::run_generate(ga)); });

  triage::workers::embed_args ea;
  auto* embed = app.add_subcommand("embed", "pooled hidden states of tickets (one per line) as JSON lines");
  embed->add_option("--model", ea.model, "GGUF model (default: the installed one)");
  embed->add_option("--input", ea.input, "input file, - for stdin")->capture_default_str();
  embed->add_flag("--ids", ea.ids, "lines are token ids");
  embed->add_option("--layer", ea.layer, "-1 final; 0..n_layers a block's output")->capture_default_str();
  embed->add_option("--pooling", ea.pooling, "last, mean or both")->capture_default_str();
  embed->add_option("--threads", ea.threads)->capture_default_str();
  embed->add_option("--batch", ea.batch)->capture_default_str();
  embed->add_option("--lora", ea.loras, "LoRA adapter GGUF merged at load (repeatable)");
  embed->add_option("--lora-scale", ea.lora_scale, "scale of the LoRA adapters")->capture_default_str();
  embed->callback([&] { std::exit(triage::workers::run_embed(ea)); });

  triage::workers::bench_args ba;
  ba.data = "data/banking77/train.csv";
  auto* bench = app.add_subcommand(
      "bench", "prefill throughput and latency on real tickets, side by side with llama.cpp");
  bench->add_option("--model", ba.model, "GGUF model (default: the installed one)");
  bench->add_option("--data", ba.data, "CSV with a text column")->capture_default_str();
  bench->add_option("--n", ba.n, "tickets")->capture_default_str();
  bench->add_option("--batches", ba.batches, "batch sizes, e.g. 1,8,32,64")->delimiter(',')->capture_default_str();
  bench->add_option("--threads", ba.threads)->capture_default_str();
  bench->add_option("--llama-python", ba.llama_python, "python with llama-cpp-python; none to skip");
  bench->add_flag("--json", ba.json, "JSON lines instead of a table");
  bench->add_option("--backend", ba.backend, "cpu or vulkan (lavapipe allowed)")->capture_default_str();
  bench->callback([&] { std::exit(triage::workers::run_bench(ba)); });

  triage::workers::train_args tr;
  auto* train = app.add_subcommand(
      "train", "fit a classifier head on labelled tickets, calibrate it, write an adapter");
  train->add_option("--data", tr.data, "labelled tickets CSV (text,intent)")->capture_default_str();
  train->add_option("--taxonomy", tr.taxonomy, "taxonomy CSV (intent,category,urgency)")->capture_default_str();
  train->add_option("--out-of-scope", tr.out_of_scope,
                    "out-of-scope queries CSV (text,split); '' for none")->capture_default_str();
  train->add_option("--model", tr.model, "base model GGUF (default: the installed one)");
  train->add_option("--out", tr.out, "adapter file to write")->capture_default_str();
  train->add_option("--report", tr.report, "JSON report (default: <out>.report.json)");
  train->add_option("--recalibrate", tr.recalibrate,
                    "keep this adapter's head (same labels and features; no training) and only recalibrate");
  train->add_option("--dump-calibration", tr.dump_calibration,
                    "CSV (confidence,correct) of the routable calibration tickets the threshold is chosen on");
  train->add_option("--name", tr.name, "adapter name")->capture_default_str();
  train->add_option("--prompt", tr.prompt, "prompt template with {text}")->capture_default_str();
  train->add_option("--layer", tr.layer, "hidden state: -1 final, 0..n_layers a block's output")->capture_default_str();
  train->add_option("--pooling", tr.pooling, "mean or last")->capture_default_str();
  train->add_option("--max-tokens", tr.max_tokens, "token budget per ticket")->capture_default_str();
  train->add_option("--hidden", tr.hidden, "hidden units of the head (0: linear)")->capture_default_str();
  train->add_option("--epochs", tr.epochs)->capture_default_str();
  train->add_option("--members", tr.members, "heads trained with seeds seed, seed+1, ... and averaged")
      ->check(CLI::Range(1, 64))->capture_default_str();
  train->add_option("--threshold-z", tr.threshold_z,
                    "judge the threshold's calibration accuracy by its Wilson lower bound at this z (0: observed)")
      ->check(CLI::Range(0.0, 5.0))->capture_default_str();
  train->add_option("--l2", tr.l2)->capture_default_str();
  train->add_option("--target-accuracy", tr.target_accuracy,
                    "accuracy auto-routed tickets must reach")->capture_default_str();
  train->add_option("--calibration", tr.calibration, "share held out for calibration")->capture_default_str();
  train->add_option("--test", tr.test, "share held out for the final test")->capture_default_str();
  train->add_option("--seed", tr.seed)->capture_default_str();
  train->add_option("--always-escalate", tr.always_escalate, "categories always escalated")->capture_default_str();
  train->add_option("--cache", tr.cache, "feature cache directory (default ~/.cache/triage/features)");
  train->add_option("--threads", tr.threads, "0: one per hardware thread")->capture_default_str();
  train->add_option("--batch", tr.batch, "tickets per forward pass")->capture_default_str();
  train->callback([&] {
    for (int i = 0; i < argc; ++i) tr.command_line.append(i ? " " : "").append(argv[i]);
    std::exit(triage::workers::run_train(tr));
  });

  triage::workers::retrain_args rt;
  auto* retrain = app.add_subcommand(
      "retrain", "train a candidate adapter from the base data plus a quarter's corrections, compare it");
  retrain->add_option("--state", rt.state, "state store directory to read the quarter's examples from");
  retrain->add_option("--examples", rt.examples, "retraining examples JSONL (`triage state export`)");
  retrain->add_option("--quarter", rt.quarter, "quarter, e.g. 2026Q4 (required with --state)");
  retrain->add_option("--data", rt.data, "base labelled tickets CSV (text,intent)")->capture_default_str();
  retrain->add_option("--taxonomy", rt.taxonomy, "taxonomy CSV (intent,category,urgency)")->capture_default_str();
  retrain->add_option("--out-of-scope", rt.out_of_scope, "out-of-scope queries CSV (text,split); '' for none")
      ->capture_default_str();
  retrain->add_option("--current", rt.current, "the adapter in service")->capture_default_str();
  retrain->add_option("--out", rt.out, "candidate adapter to write")->capture_default_str();
  retrain->add_option("--report", rt.report, "JSON report (default: <out>.report.json)");
  retrain->add_option("--name", rt.name, "candidate's name (default: <current>-<quarter>)");
  retrain->add_option("--model", rt.model, "base model GGUF (default: the installed one)");
  retrain->add_option("--seed", rt.seed, "split, shuffle and head seed (train's default: the same split)")
      ->capture_default_str();
  retrain->add_option("--calibration", rt.calibration, "base share held out for calibration")->capture_default_str();
  retrain->add_option("--test", rt.test, "base share held out for the test")->capture_default_str();
  retrain->add_option("--corrected-test", rt.corrected_test, "share of corrected examples held out")
      ->capture_default_str();
  retrain->add_option("--corrected-weight", rt.corrected_weight, "times each corrected training example counts")
      ->capture_default_str();
  retrain->add_option("--epochs", rt.epochs)->capture_default_str();
  retrain->add_option("--l2", rt.l2)->capture_default_str();
  retrain->add_option("--target-accuracy", rt.target_accuracy, "default: the current adapter's");
  retrain->add_option("--always-escalate", rt.always_escalate, "categories always escalated")->capture_default_str();
  retrain->add_option("--cache", rt.cache, "feature cache directory (default ~/.cache/triage/features)");
  retrain->add_option("--threads", rt.threads, "0: one per hardware thread")->capture_default_str();
  retrain->add_option("--batch", rt.batch, "tickets per forward pass")->capture_default_str();
  retrain->callback([&] {
    for (int i = 0; i < argc; ++i) rt.command_line.append(i ? " " : "").append(argv[i]);
    std::exit(triage::workers::run_retrain(rt));
  });

  triage::workers::classify_args ca;
  auto* classify = app.add_subcommand(
      "classify", "classify tickets (text lines, CSV or JSONL with a text field) into JSONL");
  classify->add_option("input", ca.input, "input file, or - for stdin")->capture_default_str();
  classify->add_option("--format", ca.format, "auto, text, csv or jsonl")->capture_default_str();
  classify->add_option("--model", ca.model, "base model GGUF (default: the installed one)");
  classify->add_option("--adapter", ca.adapter, "classifier adapter")->capture_default_str();
  classify->add_option("--config", ca.config, "topology config (routing policy)")->capture_default_str();
  classify->add_option("--threads", ca.threads)->capture_default_str();
  classify->add_option("--batch", ca.batch)->capture_default_str();
  classify->add_option("--mode", ca.mode, "head or generate (default: the config's mode)");
  classify->add_option("--taxonomy", ca.taxonomy, "taxonomy CSV (generate mode)")->capture_default_str();
  classify->add_option("--backend", ca.backend, "generate mode: cpu, vulkan (a GPU, else the CPU) or vulkan-required")
      ->capture_default_str();
  classify->callback([&] { std::exit(triage::workers::run_classify(ca)); });

  triage::workers::calibrate_generate_args cg;
  auto* calgen = app.add_subcommand(
      "calibrate-generate",
      "fit generate mode's temperature and threshold on a calibration split, measure it on the test split");
  calgen->add_option("--data", cg.data, "labelled tickets CSV (text,intent)")->capture_default_str();
  calgen->add_option("--taxonomy", cg.taxonomy, "taxonomy CSV (intent,category,urgency)")->capture_default_str();
  calgen->add_option("--config", cg.config, "topology config (generate: section, routing)")->capture_default_str();
  calgen->add_option("--model", cg.model, "base model GGUF (default: the installed one)");
  calgen->add_option("--out", cg.out, "calibration file (default: generate.calibration of the config)");
  calgen->add_option("--report", cg.report, "JSON report (default: <out>.report.json)");
  calgen->add_option("--calibration", cg.calibration, "share held out for calibration")->capture_default_str();
  calgen->add_option("--test", cg.test, "share held out for the final test")->capture_default_str();
  calgen->add_option("--seed", cg.seed)->capture_default_str();
  calgen->add_option("--target-accuracy", cg.target_accuracy)->capture_default_str();
  calgen->add_option("--limit", cg.limit, "most tickets used from each split (0: all)")->capture_default_str();
  calgen->add_option("--compare-adapter", cg.compare_adapter, "head-mode adapter measured on the same test tickets");
  calgen->add_option("--threads", cg.threads)->capture_default_str();
  calgen->add_option("--backend", cg.backend, "cpu, vulkan (a GPU, else the CPU) or vulkan-required")
      ->capture_default_str();
  calgen->callback([&] {
    for (int i = 0; i < argc; ++i) cg.command_line.append(i ? " " : "").append(argv[i]);
    std::exit(triage::workers::run_calibrate_generate(cg));
  });

  triage::workers::worker_args wargs;
  auto* worker = app.add_subcommand(
      "worker", "consume tickets from Kafka, classify, route, escalate, dead-letter");
  worker->add_option("--config", wargs.config, "topology config (YAML)")->capture_default_str();
  worker->add_option("--backend", wargs.backend,
                     "classifier backend: cpu (the SLM), vulkan (the SLM on a GPU, else CPU), "
                     "vulkan-required or null")
      ->capture_default_str();
  worker->add_option("--model", wargs.model, "base model GGUF (default: the installed one)");
  worker->add_option("--adapter", wargs.adapter, "classifier adapter")->capture_default_str();
  worker->add_option("--threads", wargs.threads, "inference threads (0: all)")->capture_default_str();
  worker->add_option("--taxonomy", wargs.taxonomy, "taxonomy CSV (categories for the null backend)")
      ->capture_default_str();
  worker->add_option("--worker-id", wargs.worker_id,
                     "stable id of this worker (transactional ids); default: host name");
  worker->add_option("--set", wargs.settings, "extra Kafka setting key=value (repeatable)");
  worker->add_option("--max-records", wargs.max_records, "stop after this many records");
  worker->add_option("--idle-exit-ms", wargs.idle_exit_ms, "stop when no record came for this long");
  worker->add_option("--metrics-listen", wargs.metrics_listen,
                     "host:port of /metrics, /healthz and /readyz (port 0: any free port; empty: off)")
      ->capture_default_str();
  worker->callback([&] { std::exit(triage::workers::run_worker(wargs)); });

  triage::workers::topics_args targs;
  auto* topics = app.add_subcommand("topics", "manage the topics of a topology");
  topics->require_subcommand(1);
  auto* create = topics->add_subcommand("create", "create the topics the topology needs");
  create->add_option("--config", targs.config, "topology config (YAML)")->capture_default_str();
  create->add_option("--taxonomy", targs.taxonomy, "taxonomy CSV (one routed topic per queue)")
      ->capture_default_str();
  create->add_option("--set", targs.settings, "extra Kafka setting key=value (repeatable)");
  create->add_flag("--compact-changelog", targs.compact_changelog,
                   "set cleanup.policy=compact on an existing state changelog that is not compacted "
                   "(default: refuse it)");
  create->callback([&] { std::exit(triage::workers::run_topics_create(targs)); });

  triage::workers::demo_args dargs;
  auto* demo = app.add_subcommand(
      "demo", "the embedded default: in-process mock Kafka, sample tickets, one worker");
  demo->add_option("--tickets", dargs.tickets, "JSONL tickets to publish")->capture_default_str();
  demo->add_option("--taxonomy", dargs.taxonomy, "taxonomy CSV")->capture_default_str();
  demo->add_option("--backend", dargs.backend, "cpu (the SLM) or null")->capture_default_str();
  demo->add_option("--model", dargs.model, "base model GGUF (default: the installed one)");
  demo->add_option("--adapter", dargs.adapter, "classifier adapter")->capture_default_str();
  demo->callback([&] { std::exit(triage::workers::run_demo(dargs)); });

  triage::replay::replay_args ra;
  auto* replay = app.add_subcommand(
      "replay", "replay files or a Kafka range through the worker's pipeline, evaluate, report");
  replay->add_option("inputs", ra.inputs, "ticket files: .csv, .jsonl or length-delimited protobuf .pb");
  replay->add_option("--format", ra.format, "auto, csv, jsonl or pb")->capture_default_str();
  replay->add_option("--topic", ra.topic, "replay a Kafka topic range instead of files");
  replay->add_option("--partitions", ra.partitions, "partitions to read (default: all)")->delimiter(',');
  replay->add_option("--from-offset", ra.from_offset, "first offset per partition");
  replay->add_option("--to-offset", ra.to_offset, "end offset per partition (exclusive)");
  replay->add_option("--from-time", ra.from_time, "start time: ms since epoch or RFC 3339 UTC");
  replay->add_option("--to-time", ra.to_time, "end time (exclusive)");
  replay->add_option("--set", ra.settings, "extra Kafka setting key=value (repeatable)");
  replay->add_option("--config", ra.config, "topology config (routing policy)")->capture_default_str();
  replay->add_option("--backend", ra.backend,
                     "cpu, vulkan or vulkan-required (the SLM; the config's mode: head or generate) or null")
      ->capture_default_str();
  replay->add_option("--model", ra.model, "base model GGUF (default: the installed one)");
  replay->add_option("--adapter", ra.adapter, "classifier adapter")->capture_default_str();
  replay->add_option("--taxonomy", ra.taxonomy, "taxonomy CSV (labels, null backend)")->capture_default_str();
  replay->add_option("--threads", ra.threads, "inference threads (0: all)")->capture_default_str();
  replay->add_option("--compare-adapter", ra.compare_adapter, "second run with this adapter, side by side");
  replay->add_option("--compare-config", ra.compare_config, "second run with this config (routing policy)");
  replay->add_option("--pace", ra.pace, "fast, recorded, or Nx (N times recorded)")->capture_default_str();
  replay->add_option("--limit", ra.limit, "replay only the first N records");
  replay->add_option("--output", ra.output, "write outputs as JSON lines to this file");
  replay->add_flag("--output-kafka", ra.output_kafka, "produce outputs to Kafka under --output-prefix");
  replay->add_option("--output-prefix", ra.output_prefix, "prefix of output topics")->capture_default_str();
  replay->add_flag("--allow-live-topics", ra.allow_live_topics, "allow writing to the live topics");
  replay->add_option("--report", ra.report, "JSON report file");
  replay->add_option("--html", ra.html, "self-contained HTML report file");
  replay->add_option("--frontier-cost", ra.frontier_cost, "cost of one frontier call (default: config cost.frontier_per_call)")
      ->check(CLI::NonNegativeNumber);
  replay->add_option("--slm-cost", ra.slm_cost, "SLM cost per ticket (default: config cost.slm_per_ticket)")
      ->check(CLI::NonNegativeNumber);
  replay->add_option("--weekly-volume", ra.weekly_volume, "tickets per week (default: config cost.weekly_tickets)")
      ->check(CLI::NonNegativeNumber);
  replay->add_flag("!--no-progress", ra.progress, "no progress bar");
  replay->callback([&] {
    for (int i = 0; i < argc; ++i) ra.command_line.append(i ? " " : "").append(argv[i]);
    std::exit(triage::replay::run_replay(ra));
  });

  triage::workers::add_state_commands(app);

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
