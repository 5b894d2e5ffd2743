// retrain_cmds.h: `triage retrain`: a candidate adapter from the profile's
// base data plus a quarter's corrected tickets, evaluated beside the current
// adapter on the same held-out rows, written with a report. Promotion stays a
// config change (the command prints the line).
//
//   triage retrain --state var/state/all --quarter 2026Q4
//       --current topology/adapters/banking.gguf --out banking-2026Q4.gguf   (one line)
//   triage retrain --examples retrain-2026Q4.jsonl --quarter 2026Q4 ...
//
//   retrain_args args{.examples = "retrain.jsonl", .current = "banking.gguf"};
//   auto r = retrain(args, model_features(args));   // or a test's own features
//   r.value().report                                // what <out>.report.json holds
//
// The examples are what `triage state export` writes: one JSON object a line,
// `source` "corrected" with `label` (category) and optionally `label_intent`.
// Others (escalated, low_confidence: no agent label) are counted, not used;
// corrected ones without `text` (the worker kept no ticket text) are counted
// and reported, and cannot be used. A label naming only a category whose
// taxonomy has several intents becomes the intent of that category the
// current adapter finds most probable for the text.
//
// Split: the base data (and the out-of-scope training queries when the
// current adapter has that class) is split as `triage train` splits it, by
// the same seed and shares, so with the defaults the test rows are the ones
// the current adapter was tested on; base rows whose text a correction
// relabels are left out. The corrected examples are shuffled by the seed and
// a share (--corrected-test) held out; the rest joins the training rows,
// each --corrected-weight times. Both adapters are scored on the held-out
// base rows and the held-out corrected rows; the candidate keeps the current
// adapter's feature recipe (layer, pooling, prompt, token budget) and head size.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "compute/classifier/engine.h"

namespace triage::workers {

struct retrain_args {
  // The quarter's examples: a state store directory (read only, as `triage
  // state export` reads it), or a JSONL file. Exactly one. Default: none.
  std::string state;
  std::string examples;
  // Quarter, e.g. 2026Q4: required with --state; with --examples, lines of
  // other quarters are skipped (counted). Default: none (every line).
  std::string quarter;
  // Base data (text,intent) and taxonomy (intent,category,urgency), as
  // `triage train`. Default: the banking profile.
  std::string data = "data/banking77/train.csv";
  std::string taxonomy = "data/banking77/taxonomy.csv";
  // Out-of-scope queries (text,split); used when the current adapter has the
  // out_of_scope class. '' for none. Default: CLINC150's.
  std::string out_of_scope = "data/out_of_scope/clinc150_oos_train_val.csv";
  // The adapter in service. Default: topology/adapters/banking.gguf.
  std::string current = "topology/adapters/banking.gguf";
  // Candidate adapter to write; its report goes to `report` (default
  // <out>.report.json). Default: candidate.gguf.
  std::string out = "candidate.gguf";
  std::string report;
  std::string name;                 // candidate's name; default: <current's name>-<quarter>
  std::string model;                // base model; default: the installed one
  uint64_t seed = 20261124;         // split, shuffles and head initialisation
  double calibration = 0.15;        // base share held out for calibration (as train)
  double test = 0.15;               // base share held out for the test (as train)
  double corrected_test = 0.3;      // share of corrected examples held out
  int corrected_weight = 1;         // times each corrected training example counts
  int epochs = 60;
  float l2 = 1e-4f;
  double target_accuracy = -1;      // <0: the current adapter's
  std::vector<std::string> always_escalate{"disputes"};
  std::string cache;                // feature cache; default ~/.cache/triage/features
  int threads = 0;
  int batch = 32;
  std::string command_line;         // recorded in the adapter
};

// Where features come from: the base model (model_features), or a test's
// stand-in. `features` returns (texts.size(), dim) floats.
struct feature_source {
  std::string fingerprint;  // model_fingerprint of the base model
  std::string model_name;   // file name, recorded in the adapter
  size_t dim = 0;
  std::function<std::vector<float>(const std::vector<std::string>& texts,
                                   const classifier::feature_spec& spec, const std::string& label)>
      features;
};
// Called once the inputs have been checked (so bad input fails before a
// model loads).
using feature_factory = std::function<result<feature_source>()>;

// The base model's features (cached like `triage train`'s).
feature_factory model_features(const retrain_args& args);

struct retrain_outcome {
  nlohmann::ordered_json report;  // also written to the report file
  std::string table;              // the readable comparison
};

// Trains, evaluates and writes the candidate and its report. Errors name the
// input: the examples file and line, the taxonomy against the adapter's.
result<retrain_outcome> retrain(const retrain_args& args, const feature_factory& features);

// `triage retrain`: retrain() with the model's features; prints the table
// and the config line that promotes the candidate.
int run_retrain(const retrain_args& args);

}  // namespace triage::workers
