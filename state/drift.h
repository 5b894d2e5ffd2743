// drift.h: the histograms drift is measured on, the population stability
// index, and time buckets (quarters, hours) of record timestamps.
//
//   counts base = {500, 300, 200}, now = {300, 300, 400};
//   double d = psi(base, now);          // 0.1 moderate, 0.25 significant drift
//   quarter_of(1790000000000);          // "2026Q4"
//   hour_of(1790000000000);             // "2026-09-21T14"
//
// Unknown-token rate: the share of a ticket's tokens that stand for bytes
// rather than text the vocabulary knows (see is_fragment_piece), binned per
// ticket, so a quarter whose tickets bring new scripts, emoji or mojibake
// shows against the baseline.
//
// PSI = sum over bins of (a_i - e_i) * ln(a_i / e_i), where e_i and a_i are
// the baseline's and the current shares of bin i. A bin empty on one side
// would make it infinite, so shares are floored at psi_floor (1e-4) first.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "state/store.h"

namespace triage::state {

inline constexpr int confidence_bins = 10;  // deciles [0, 0.1) ... [0.9, 1.0]
inline constexpr int length_bins = 8;       // tokens < 16, < 32, ... < 1024, >= 1024
inline constexpr double psi_floor = 1e-4;
inline constexpr int unknown_bins = 8;      // rate 0, < 1%, < 2%, < 5%, < 10%, < 20%, < 50%, >= 50%

int confidence_bin(float confidence);
int length_bin(uint32_t tokens);
// The bin of `unknown` fragment tokens among `tokens` (0 tokens: bin 0).
int unknown_bin(uint32_t unknown, uint32_t tokens);

// What counts as an unknown token, decided on its bytes (tokenizer::piece):
// true when they are not one or more complete UTF-8 characters, i.e. a
// raw byte or part of a character the vocabulary holds no token for. A
// byte-level BPE tokenizer (SmolLM2) has no unknown token: a character
// outside its merges comes out as such byte tokens. SentencePiece's
// byte-fallback tokens (<0xE2>) and the unknown token itself count too; the
// caller adds those by token type (workers/unknown_tokens.h).
bool is_fragment_piece(std::string_view bytes);

// PSI of two histograms over the same bins (counts, not shares). Bins missing
// from the shorter one count as empty. 0 if either is empty.
double psi(std::span<const int64_t> baseline, std::span<const int64_t> current);
// PSI of two categorical distributions (category -> count), over the union
// of their categories.
double psi(const std::map<std::string, int64_t>& baseline, const std::map<std::string, int64_t>& current);

// "2026Q4" for a Unix time in milliseconds (UTC).
std::string quarter_of(int64_t unix_ms);
// "2026-11-24T03": the UTC hour bucket.
std::string hour_of(int64_t unix_ms);
// "2026Q4"-shaped.
bool is_quarter(std::string_view s);

}  // namespace triage::state
