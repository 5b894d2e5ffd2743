// attention.h: causal scaled-dot-product attention of one head over one
// sequence, with grouped-query heads (several query heads share a K/V head).
// The model calls it per (sequence, head) pair, in parallel; K and V are the
// sequence's rows, either straight from a batch's projections or from a KV
// cache holding earlier positions too.
//
//   triage::cpu::attention_args a;
//   a.q = q + head * head_dim;  a.ldq = n_heads * head_dim;  a.n_q = len;
//   a.k = k + kv_head * head_dim;  a.v = ...;  a.ldkv = n_kv_heads * head_dim;
//   a.head_dim = 64;  a.scale = 1 / sqrt(64.f);  a.q_pos0 = 0;
//   a.out = out + head * head_dim;  a.ldo = n_heads * head_dim;
//   std::vector<float> scratch(triage::cpu::attention_scratch_floats(n_keys, 64));
//   triage::cpu::attention_head(a, scratch);
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace triage::cpu {

struct attention_args {
  const float* q = nullptr;  // n_q rows of head_dim, ldq apart; query i at position q_pos0 + i
  int64_t ldq = 0;
  int64_t n_q = 0;
  int64_t q_pos0 = 0;
  const float* k = nullptr;  // rows of head_dim, ldkv apart; key j at position j
  const float* v = nullptr;
  int64_t ldkv = 0;
  int head_dim = 0;
  float scale = 1.0f;  // usually 1 / sqrt(head_dim)
  float* out = nullptr;  // n_q rows of head_dim, ldo apart
  int64_t ldo = 0;
  // Round the attention weights to F16 before weighting V, as llama.cpp's
  // CPU backend does (its KQV product runs in F16); Q, K and V are rounded
  // by the caller.
  bool f16_weights = false;
};

// Query i attends to keys 0 .. q_pos0 + i (the causal mask). scratch holds
// at least attention_scratch_floats(q_pos0 + n_q, head_dim) floats.
void attention_head(const attention_args& a, std::span<float> scratch);
size_t attention_scratch_floats(int64_t n_keys, int head_dim);

}  // namespace triage::cpu
