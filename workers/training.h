// training.h: what `triage train` and `triage retrain` share: features of
// texts (cached on disk), fitting an adapter's head with its temperature,
// threshold and drift baselines, and scoring an adapter on held-out rows.
//
//   auto f = cached_features(model, tok, spec, texts, cache_dir, 32, truncated, "features");
//   cl::adapter a = labels_of_taxonomy;                     // intents, categories, ...
//   auto fit = fit_adapter(a, f, dim, labels, split.train, split.calibration,
//                          {.members = 5, .target_accuracy = 0.99, .always_escalate = {"disputes"}});
//   auto ev = evaluate(a, f, dim, labels, split.test, {"disputes"});
//   ev.accuracy, ev.ece, ev.coverage, to_json(ev)
//
// Features are rows of `dim` floats; labels index the adapter's intents; row
// lists index both, so one feature matrix serves every split (a row may
// appear more than once in the training rows, which weighs it more).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "compute/classifier/adapter.h"
#include "compute/classifier/calibration.h"
#include "compute/classifier/engine.h"

namespace triage::workers {

// Features for `texts`, from the cache (cache_dir/<sha256 of model, spec and
// texts>.f32) when an identical run made them; else extracted (progress bar
// on stderr labelled `label`) and cached.
std::vector<float> cached_features(model::model& m, const tokenizer::tokenizer& tok,
                                   const classifier::feature_spec& spec,
                                   const std::vector<std::string>& texts, const std::string& cache_dir,
                                   int batch, std::vector<uint8_t>& truncated, const std::string& label);

struct fit_options {
  // Hidden units of the head (0: linear). Default: 0.
  int hidden = 0;
  // L2 penalty. Default: 1e-4.
  float l2 = 1e-4f;
  // Passes over the training rows. Default: 60.
  int epochs = 60;
  // Initialisation and minibatch order (member k of an ensemble uses seed + k).
  // Default: 20261124.
  uint64_t seed = 20261124;
  // Heads trained with seeds seed, seed + 1, ... whose logits are averaged
  // (classifier::head::ensemble); 1: a single head. Default: 1. Bounds: 1..64.
  int members = 1;
  // Threads training members side by side (0: one per hardware thread, at most
  // `members`). The result does not depend on it. Default: 0.
  int threads = 0;
  // Keep a.intent_head as it is (already trained, e.g. loaded from an
  // adapter with the same labels and dim) and only calibrate: temperature,
  // threshold, baselines. Default: false.
  bool keep_head = false;
  // Accuracy the auto-routed calibration tickets must reach. Default: 0.99.
  double target_accuracy = 0.99;
  // z of the Wilson lower bound the calibration accuracy is judged by when
  // choosing the threshold (classifier::threshold_options::z; 0: the observed
  // accuracy). Default: 0.
  double threshold_z = 0.0;
  // Categories the routing policy always escalates (not counted as routable
  // when the threshold is chosen). Default: {"disputes"}.
  std::vector<std::string> always_escalate{"disputes"};
  // Called after each epoch with (index of that epoch counted over all
  // members, so the last is members * epochs - 1; its mean training loss),
  // one call at a time. Default: none.
  std::function<void(int, double)> on_epoch = {};
};

struct fit_result {
  double final_loss = 0;                         // mean training loss of the last epoch (mean over members)
  classifier::threshold_choice choice;           // the threshold and its calibration figures
  classifier::reliability_report calibration;    // reliability on the calibration rows
  // The routable calibration tickets the threshold was chosen on: their
  // calibrated confidence and whether the category was right.
  std::vector<float> routable_confidence;
  std::vector<uint8_t> routable_correct;
};

// Trains a.intent_head on `train_rows`, fits the temperature on
// `calibration_rows`, chooses the threshold there (routable tickets only) and
// sets the drift baselines from the calibration predictions. `a` must carry
// its labels (intents, categories, intent_category, intent_urgency).
fit_result fit_adapter(classifier::adapter& a, std::span<const float> features, size_t dim,
                       std::span<const int32_t> labels, const std::vector<size_t>& train_rows,
                       const std::vector<size_t>& calibration_rows, const fit_options& options);

// Calibrated predictions of `a` for the given rows.
std::vector<classifier::prediction> predict(const classifier::adapter& a, std::span<const float> features,
                                            const std::vector<size_t>& rows);

// Whether the routing policy would route `p` (not out of scope, not an
// always-escalated category); it routes when also confidence >= threshold.
bool routable(const classifier::adapter& a, const classifier::prediction& p,
              const std::vector<std::string>& always_escalate);

struct evaluation {
  size_t n = 0;                  // rows scored
  double accuracy = 0;           // category accuracy
  double macro_f1 = 0;           // over categories with support
  double urgency_accuracy = 0;
  double ece = 0;                // of the category confidence
  double coverage = 0;           // share auto-routed at the adapter's threshold
  double coverage_in_scope = 0;  // auto-routed / rows whose label is not out of scope
  double routed_accuracy = 0;    // accuracy among the auto-routed (0 when none)
  classifier::reliability_report reliability;
  nlohmann::ordered_json per_category_json() const;
  // category -> (tp, fp, fn)
  std::vector<std::string> categories;
  std::vector<size_t> tp, fp, fn;
};

// `a` on the given rows (labels are intents of `a`), with routing at a.threshold.
evaluation evaluate(const classifier::adapter& a, std::span<const float> features,
                    std::span<const int32_t> labels, const std::vector<size_t>& rows,
                    const std::vector<std::string>& always_escalate);

// {"ece", "bins": [...]} of a reliability report (empty bins left out).
nlohmann::ordered_json reliability_json(const classifier::reliability_report& r);

}  // namespace triage::workers
