// classify_cmds.h: `triage train` (fit and calibrate an adapter on labelled
// tickets) and `triage classify` (tickets from a file to JSONL decisions).
#pragma once

#include <string>
#include <vector>

namespace triage::workers {

struct train_args {
  std::string data = "data/banking77/train.csv";          // text,intent
  std::string taxonomy = "data/banking77/taxonomy.csv";   // intent,category,urgency
  // Out-of-scope queries (text,split): rows with split=train join training
  // and calibration as the "out_of_scope" class; split=val rows measure how
  // many out-of-scope tickets escalate. Empty: none.
  std::string out_of_scope = "data/out_of_scope/clinc150_oos_train_val.csv";
  std::string model;                                       // default: the installed model
  std::string out = "adapter.gguf";
  std::string report;                                      // JSON report; default: <out>.report.json
  std::string recalibrate;                                 // adapter whose head is kept (no training); empty: train
  std::string dump_calibration;                            // CSV of routable calibration tickets; empty: none
  std::string name = "banking";
  std::string prompt = "{text}";
  int layer = -1;
  std::string pooling = "mean";
  int max_tokens = 512;
  int hidden = 0;
  int epochs = 60;
  float l2 = 1e-4f;
  int members = 1;                                         // heads averaged (ensemble)
  double target_accuracy = 0.99;
  double threshold_z = 0.0;                                // Wilson bound z for the threshold
  double calibration = 0.15;
  double test = 0.15;
  uint64_t seed = 20261124;
  std::vector<std::string> always_escalate{"disputes"};
  std::string cache;                                       // feature cache dir; default ~/.cache/triage/features
  int threads = 0;
  int batch = 32;
  std::string command_line;                                // recorded in the adapter
};

int run_train(const train_args& args);

struct classify_args {
  std::string input = "-";                                 // file or '-' (stdin)
  std::string format = "auto";                             // auto, text, csv, jsonl
  std::string model;
  std::string adapter = "topology/adapters/banking.gguf";
  std::string config = "topology/default.yaml";            // routing policy
  int threads = 0;
  int batch = 32;
  // "head", "generate", or empty: the config's mode.
  std::string mode;
  std::string taxonomy = "data/banking77/taxonomy.csv";   // categories (generate mode)
  // Generate mode: cpu, vulkan (else the CPU, logged) or vulkan-required.
  std::string backend = "cpu";
};

int run_classify(const classify_args& args);

}  // namespace triage::workers
