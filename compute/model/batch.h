// batch.h: a ragged batch, several token sequences of different lengths
// flattened into one list, so that each layer multiplies one (n_tokens, dim)
// matrix by each weight matrix; attention then runs per sequence, each with
// its own causal mask (tokens never see another sequence).
//
//   std::vector<std::vector<int32_t>> seqs{{1, 2, 3}, {4, 5}};
//   auto b = triage::model::ragged_batch::from(seqs);  // tokens 1 2 3 4 5
//   b.offsets;    // 0 3 5
//   b.positions;  // 0 1 2 0 1
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace triage::model {

struct ragged_batch {
  std::vector<int32_t> tokens;     // (n_tokens) every sequence, one after another
  std::vector<int32_t> positions;  // (n_tokens) position of each token in its sequence
  std::vector<int64_t> offsets;    // (n_seqs + 1) where each sequence starts in tokens

  int64_t n_seqs() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t n_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t length(int64_t s) const { return offsets[s + 1] - offsets[s]; }

  // Positions start at pos0 (non-zero when continuing a cached sequence).
  static ragged_batch from(std::span<const std::vector<int32_t>> seqs, int32_t pos0 = 0);
  static ragged_batch single(std::span<const int32_t> seq, int32_t pos0 = 0);
};

// Groups consecutive sequences into micro-batches of at most max_tokens
// tokens each (a longer sequence forms a batch of its own), bounding the
// activation memory. Returns [begin, end) index ranges into seqs.
std::vector<std::pair<size_t, size_t>> plan_micro_batches(
    std::span<const std::vector<int32_t>> seqs, int64_t max_tokens);

}  // namespace triage::model
