// replay_cmds.h: `triage replay`: files or a Kafka range through the worker's
// processor, outputs to a JSONL file or prefixed Kafka topics, an evaluation
// report in JSON and HTML, optionally side by side with a second adapter or
// policy. Returns the process exit status (0 ok, 1 failed, 2 bad input).
//
//   triage replay data/demo/tickets.jsonl --backend null --report r.json --html r.html
//   triage replay --topic tickets --from-time 2026-11-24T00:00:00Z
//       --to-time 2026-11-25T00:00:00Z --compare-adapter candidate.gguf --html compare.html
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace triage::replay {

struct replay_args {
  std::vector<std::string> inputs;    // files (CSV, JSONL, length-delimited protobuf)
  std::string format = "auto";        // auto, csv, jsonl, pb
  // Kafka range (instead of files):
  std::string topic;
  std::vector<int32_t> partitions;    // empty: all
  int64_t from_offset = -1, to_offset = -1;  // -1: unset
  std::string from_time, to_time;     // ms since the epoch or RFC 3339 UTC
  std::vector<std::string> settings;  // extra Kafka settings key=value
  // Pipeline:
  std::string config = "topology/default.yaml";
  std::string backend = "cpu";
  std::string model;
  std::string adapter = "topology/adapters/banking.gguf";
  std::string taxonomy = "data/banking77/taxonomy.csv";
  int threads = 0;
  std::string compare_adapter;        // run b: another adapter
  std::string compare_config;         // run b: another routing policy
  std::string pace = "fast";          // fast, recorded, or Nx (N times recorded)
  uint64_t limit = 0;                 // replay the first N records (0: all)
  // Outputs:
  std::string output;                 // JSONL file of outputs
  bool output_kafka = false;          // produce outputs to Kafka under output_prefix
  std::string output_prefix = "replay.";
  bool allow_live_topics = false;
  std::string report;                 // JSON report file
  std::string html;                   // HTML report file
  // Cost model:
  // Cost model; negative: take it from the config's cost section.
  double frontier_cost = -1;
  double slm_cost = -1;
  double weekly_volume = -1;
  bool progress = true;
  std::string command_line;
};

int run_replay(const replay_args& args);

}  // namespace triage::replay
