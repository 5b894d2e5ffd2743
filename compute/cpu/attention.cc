#include "compute/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <immintrin.h>

#include "compute/cpu/cpu_features.h"
#include "compute/cpu/ops.h"

namespace triage::cpu {

// Both dot products of attention (q.k over the head dimension, p.v over
// positions) accumulate in 16 lanes, element i into lane i % 16 with fused
// multiply-adds, and reduce the lanes as (a[i] + a[i+8]), (.. + ..[i+4]),
// (s[0] + s[2]) + (s[1] + s[3]). That is the order of llama.cpp's CPU
// backend (its tinyBLAS F16 kernels on AVX-512), reproduced here so that the
// results match it to the last bit and rounding decisions downstream (the
// 8-bit activation quantization) come out the same.
namespace {

constexpr int lanes = 16;

float reduce16(const float* a) {
  float s8[8], s4[4];
  for (int i = 0; i < 8; ++i) s8[i] = a[i + 8] + a[i];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i + 4] + s8[i];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// --- portable version (std::fma keeps the rounding of the vector code) ---

float dot_scalar(const float* a, const float* b, int n) {
  float acc[lanes] = {};
  for (int i = 0; i < n; ++i) acc[i % lanes] = std::fma(a[i], b[i], acc[i % lanes]);
  return reduce16(acc);
}

void attend_scalar(const attention_args& a, float* scores, float* acc) {
  const int hd = a.head_dim;
  for (int64_t i = 0; i < a.n_q; ++i) {
    const float* q = a.q + i * a.ldq;
    const int64_t n_keys = a.q_pos0 + i + 1;
    for (int64_t j = 0; j < n_keys; ++j) scores[j] = a.scale * dot_scalar(q, a.k + j * a.ldkv, hd);
    softmax(scores, n_keys);
    if (a.f16_weights) round_to_f16(scores, n_keys);
    std::fill(acc, acc + lanes * hd, 0.0f);
    for (int64_t j = 0; j < n_keys; ++j) {
      float* lane = acc + (j % lanes) * hd;
      const float* v = a.v + j * a.ldkv;
      for (int d = 0; d < hd; ++d) lane[d] = std::fma(scores[j], v[d], lane[d]);
    }
    float* out = a.out + i * a.ldo;
    float col[lanes];
    for (int d = 0; d < hd; ++d) {
      for (int l = 0; l < lanes; ++l) col[l] = acc[l * hd + d];
      out[d] = reduce16(col);
    }
  }
}

// --- AVX2 version: the same operations, 8 lanes at a time ---

__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, int n) {
  __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
  int i = 0;
  for (; i + lanes <= n; i += lanes) {
    lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), lo);
    hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), hi);
  }
  alignas(32) float acc[lanes];
  _mm256_store_ps(acc, lo);
  _mm256_store_ps(acc + 8, hi);
  for (; i < n; ++i) acc[i % lanes] = std::fma(a[i], b[i], acc[i % lanes]);
  const __m256 s8 = _mm256_add_ps(_mm256_load_ps(acc + 8), _mm256_load_ps(acc));
  const __m128 s4 = _mm_add_ps(_mm256_extractf128_ps(s8, 1), _mm256_castps256_ps128(s8));
  const __m128 t = _mm_add_ps(s4, _mm_shuffle_ps(s4, s4, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

__attribute__((target("avx2,fma"))) void attend_avx2(const attention_args& a, float* scores,
                                                     float* acc, float* zeros) {
  const int hd = a.head_dim;
  const bool vec = hd % 8 == 0;
  if (!vec) {
    attend_scalar(a, scores, acc);
    return;
  }
  for (int64_t i = 0; i < a.n_q; ++i) {
    const float* q = a.q + i * a.ldq;
    const int64_t n_keys = a.q_pos0 + i + 1;
    for (int64_t j = 0; j < n_keys; ++j) scores[j] = a.scale * dot_avx2(q, a.k + j * a.ldkv, hd);
    softmax(scores, n_keys);
    if (a.f16_weights) round_to_f16(scores, n_keys);
    const int64_t used = std::min<int64_t>(n_keys, lanes);
    std::fill(acc, acc + used * hd, 0.0f);
    for (int64_t j = 0; j < n_keys; ++j) {
      float* lane = acc + (j % lanes) * hd;
      const float* v = a.v + j * a.ldkv;
      const __m256 p = _mm256_set1_ps(scores[j]);
      for (int d = 0; d < hd; d += 8) {
        _mm256_storeu_ps(lane + d, _mm256_fmadd_ps(p, _mm256_loadu_ps(v + d),
                                                   _mm256_loadu_ps(lane + d)));
      }
    }
    // Unused lanes hold zeros in the reference order; adding +0 changes
    // nothing but the sign of a zero, so they are skipped (treated as 0).
    float* out = a.out + i * a.ldo;
    const float* lane[lanes];
    for (int l = 0; l < lanes; ++l) lane[l] = l < used ? acc + l * hd : zeros;
    for (int d = 0; d < hd; d += 8) {
      __m256 s8[8], s4[4];
      for (int l = 0; l < 8; ++l) {
        s8[l] = _mm256_add_ps(_mm256_loadu_ps(lane[l + 8] + d), _mm256_loadu_ps(lane[l] + d));
      }
      for (int l = 0; l < 4; ++l) s4[l] = _mm256_add_ps(s8[l + 4], s8[l]);
      _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_add_ps(s4[0], s4[2]),
                                              _mm256_add_ps(s4[1], s4[3])));
    }
  }
}

}  // namespace

void attention_head(const attention_args& a, std::span<float> scratch) {
  float* scores = scratch.data();
  float* acc = scores + (a.q_pos0 + a.n_q + 7) / 8 * 8;
  if (has_avx2()) {
    float* zeros = acc + lanes * a.head_dim;
    std::fill(zeros, zeros + a.head_dim, 0.0f);
    attend_avx2(a, scores, acc, zeros);
  } else {
    attend_scalar(a, scores, acc);
  }
}

size_t attention_scratch_floats(int64_t n_keys, int head_dim) {
  return static_cast<size_t>((n_keys + 7) / 8 * 8 + (lanes + 1) * head_dim);
}

}  // namespace triage::cpu
