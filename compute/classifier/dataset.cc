#include "compute/classifier/dataset.h"

#include <algorithm>
#include <map>

#include "base/csv.h"

namespace triage::classifier {

uint64_t splitmix64::next() {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t splitmix64::below(uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next(); while (x >= limit);
  return x % n;
}

result<std::vector<example>> load_examples(const std::string& path, const taxonomy& tax) {
  auto table = read_csv(path);
  if (!table) return make_error(errc::bad_dataset, table.error().message);
  const auto& t = table.value();
  auto ct = t.column("text"), ci = t.column("intent");
  if (!ct) return make_error(errc::bad_dataset, ct.error().message);
  if (!ci) return make_error(errc::bad_dataset, ci.error().message);
  std::vector<example> out;
  out.reserve(t.rows.size());
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    const std::string at = path + ":" + std::to_string(t.lines[r]) + ": ";
    auto intent = tax.intent_index(row[ci.value()]);
    if (!intent) {
      return make_error(errc::bad_dataset,
                        at + "intent '" + row[ci.value()] + "' is not in the taxonomy");
    }
    if (row[ct.value()].find_first_not_of(" \t\r\n") == std::string::npos) {
      return make_error(errc::bad_dataset, at + "empty text");
    }
    out.push_back({row[ct.value()], *intent});
  }
  if (out.empty()) return make_error(errc::bad_dataset, path + ": no examples");
  return out;
}

result<std::vector<std::string>> load_texts(const std::string& path) {
  auto table = read_csv(path);
  if (!table) return make_error(errc::bad_dataset, table.error().message);
  auto ct = table.value().column("text");
  if (!ct) return make_error(errc::bad_dataset, ct.error().message);
  std::vector<std::string> out;
  for (const auto& row : table.value().rows) out.push_back(row[ct.value()]);
  return out;
}

std::vector<int32_t> labels_of(const std::vector<example>& examples) {
  std::vector<int32_t> labels;
  labels.reserve(examples.size());
  for (const auto& e : examples) labels.push_back(e.intent);
  return labels;
}

split stratified_split(const std::vector<int32_t>& labels, const split_options& options) {
  std::map<int32_t, std::vector<size_t>> by_class;
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(i);
  splitmix64 rng{options.seed};
  split out;
  for (auto& [label, idx] : by_class) {
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
    const auto n = idx.size();
    const auto n_test = static_cast<size_t>(static_cast<double>(n) * options.test);
    const auto n_cal = static_cast<size_t>(static_cast<double>(n) * options.calibration);
    out.test.insert(out.test.end(), idx.begin(), idx.begin() + n_test);
    out.calibration.insert(out.calibration.end(), idx.begin() + n_test,
                           idx.begin() + n_test + n_cal);
    out.train.insert(out.train.end(), idx.begin() + n_test + n_cal, idx.end());
  }
  for (auto* part : {&out.train, &out.calibration, &out.test}) std::sort(part->begin(), part->end());
  return out;
}

}  // namespace triage::classifier
