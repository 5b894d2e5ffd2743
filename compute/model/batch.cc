#include "compute/model/batch.h"

namespace triage::model {

ragged_batch ragged_batch::from(std::span<const std::vector<int32_t>> seqs, int32_t pos0) {
  ragged_batch b;
  size_t total = 0;
  for (const auto& s : seqs) total += s.size();
  b.tokens.reserve(total);
  b.positions.reserve(total);
  b.offsets.reserve(seqs.size() + 1);
  b.offsets.push_back(0);
  for (const auto& s : seqs) {
    for (size_t i = 0; i < s.size(); ++i) {
      b.tokens.push_back(s[i]);
      b.positions.push_back(pos0 + static_cast<int32_t>(i));
    }
    b.offsets.push_back(static_cast<int64_t>(b.tokens.size()));
  }
  return b;
}

ragged_batch ragged_batch::single(std::span<const int32_t> seq, int32_t pos0) {
  ragged_batch b;
  b.tokens.assign(seq.begin(), seq.end());
  b.positions.resize(seq.size());
  for (size_t i = 0; i < seq.size(); ++i) b.positions[i] = pos0 + static_cast<int32_t>(i);
  b.offsets = {0, static_cast<int64_t>(seq.size())};
  return b;
}

std::vector<std::pair<size_t, size_t>> plan_micro_batches(
    std::span<const std::vector<int32_t>> seqs, int64_t max_tokens) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t begin = 0;
  int64_t tokens = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto n = static_cast<int64_t>(seqs[i].size());
    if (i > begin && tokens + n > max_tokens) {
      out.emplace_back(begin, i);
      begin = i;
      tokens = 0;
    }
    tokens += n;
  }
  if (begin < seqs.size()) out.emplace_back(begin, seqs.size());
  return out;
}

}  // namespace triage::model
