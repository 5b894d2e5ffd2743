// generate_cmds.h: generate mode on the command line. `triage
// calibrate-generate` fits the temperature and threshold of generate mode on
// a calibration split and measures it (and optionally head mode) on the
// held-out test split; `triage classify --mode generate` lands here too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "topology/config.h"
#include "workers/classify_cmds.h"

namespace triage::workers {

struct calibrate_generate_args {
  std::string data = "data/banking77/train.csv";          // text,intent
  std::string taxonomy = "data/banking77/taxonomy.csv";   // intent,category,urgency
  std::string config = "topology/default.yaml";            // its generate: section and routing
  std::string model;                                       // default: the installed model
  std::string out;                                         // default: generate.calibration, else generate-calibration.json
  std::string report;                                      // default: <out>.report.json
  double calibration = 0.15;                               // split shares and seed as `triage train`
  double test = 0.15;
  uint64_t seed = 20261124;
  double target_accuracy = 0.99;
  // Most tickets used from each of the calibration and test splits, evenly
  // spaced over them (generation is ~0.3 s a ticket). 0: all.
  size_t limit = 300;
  // A head-mode adapter to measure on the same test tickets. Empty: none.
  std::string compare_adapter;
  int threads = 0;
  // cpu, vulkan (a GPU, else the CPU) or vulkan-required, as `triage
  // classify --backend` in generate mode. Default: cpu.
  std::string backend = "cpu";
  std::string command_line;
};

int run_calibrate_generate(const calibrate_generate_args& args);

// `triage classify` in generate mode: the same JSONL as head mode (intent is
// empty: the model names categories, not intents).
int run_classify_generate(const classify_args& args, const topology::config& cfg,
                          const std::vector<std::string>& ids,
                          const std::vector<std::string>& texts);

}  // namespace triage::workers
