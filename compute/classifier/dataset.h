// dataset.h: labelled tickets for training and evaluation, and the
// stratified split that keeps every intent's share in each part.
//
//   auto data = load_examples("data/banking77/train.csv", tax);   // text,intent
//   auto parts = stratified_split(labels_of(data.value()), {.calibration = 0.15, .test = 0.15});
//   for (size_t i : parts.train) fit(data.value()[i]);
//
// The split is a pure function of the labels and the seed (its own
// Fisher-Yates over splitmix64, not std::shuffle, whose algorithm differs
// between standard libraries), so a split is reproducible anywhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "compute/classifier/taxonomy.h"

namespace triage::classifier {

struct example {
  std::string text;
  int32_t intent = -1;  // index into taxonomy::intents
};

// Reads a CSV with columns `text` and `intent`; an intent missing from the
// taxonomy or an empty text is an error naming file and line.
result<std::vector<example>> load_examples(const std::string& path, const taxonomy& tax);

// Reads the `text` column only (e.g. out-of-scope queries).
result<std::vector<std::string>> load_texts(const std::string& path);

std::vector<int32_t> labels_of(const std::vector<example>& examples);

struct split_options {
  // Share of each class held out for calibration. Default: 0.15. Bounds: [0, 1).
  double calibration = 0.15;
  // Share of each class held out for the final test. Default: 0.15. Bounds: [0, 1).
  double test = 0.15;
  // Default: 20261124.
  uint64_t seed = 20261124;
};

struct split {
  std::vector<size_t> train, calibration, test;  // indices into the examples
};

// Each class is shuffled and cut by the shares (rounded down, so a class with
// few examples keeps them for training first). Indices come out sorted.
split stratified_split(const std::vector<int32_t>& labels, const split_options& options = {});

// splitmix64: a small, fixed, well-mixed generator for reproducible shuffles.
struct splitmix64 {
  uint64_t state;
  uint64_t next();
  // Uniform in [0, n) by rejection, n > 0.
  uint64_t below(uint64_t n);
};

}  // namespace triage::classifier
