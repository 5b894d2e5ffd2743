// calibration.h: making confidences mean what they say, and choosing the
// escalation threshold from data.
//
//   float t = fit_temperature(logits, labels, n_classes);   // on the calibration split
//   auto rel = reliability(confidences, correct);           // ECE + table
//   auto th = choose_threshold(confidences, correct, {.target_accuracy = 0.99});
//   // route automatically when confidence >= th.threshold
//
// Temperature scaling (one scalar dividing the logits, fitted by minimising
// the negative log-likelihood) keeps the ranking, so it changes confidences,
// not accuracy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace triage::classifier {

// logits: (n, n_classes) row-major. Minimises mean NLL over T in [0.05, 20]
// (golden-section search on log T; the NLL is convex in 1/T).
float fit_temperature(std::span<const float> logits, std::span<const int32_t> labels,
                      int n_classes);

// Mean negative log-likelihood of softmax(logits / temperature).
double mean_nll(std::span<const float> logits, std::span<const int32_t> labels, int n_classes,
                float temperature);

struct reliability_bin {
  double lo = 0, hi = 0;          // confidence range [lo, hi)
  size_t count = 0;
  double mean_confidence = 0;     // of the tickets in the bin
  double accuracy = 0;            // share of them that were right
};

struct reliability_report {
  double ece = 0;                 // expected calibration error: sum_b n_b/N |acc_b - conf_b|
  std::vector<reliability_bin> bins;
};

// Equal-width bins over [0, 1]; confidence 1.0 falls in the last bin.
reliability_report reliability(std::span<const float> confidence, std::span<const uint8_t> correct,
                               int n_bins = 15);

struct threshold_options {
  // Accuracy the auto-routed tickets must reach. Default: 0.98. Bounds: (0, 1].
  double target_accuracy = 0.98;
  // z of the Wilson lower bound the accuracy is judged by (0: the observed
  // accuracy itself; 1.64: 95% one-sided). A bound keeps a small calibration
  // split from promising more than it can show. Default: 0.
  double z = 0.0;
};

struct threshold_choice {
  float threshold = 1.0f;  // route when confidence >= threshold
  double coverage = 0;     // share of tickets at or above it
  double accuracy = 0;     // observed accuracy among them
  bool met = false;        // false: no threshold reaches the target; nothing routes
};

// The lowest threshold at which the tickets at or above it reach the target
// accuracy (judged by the Wilson bound when z > 0).
threshold_choice choose_threshold(std::span<const float> confidence,
                                  std::span<const uint8_t> correct,
                                  const threshold_options& options = {});

// (accuracy among confidence >= t, coverage) for a given threshold.
threshold_choice evaluate_threshold(std::span<const float> confidence,
                                    std::span<const uint8_t> correct, float threshold);

}  // namespace triage::classifier
