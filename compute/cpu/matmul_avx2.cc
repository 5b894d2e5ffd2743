// AVX2 + FMA + F16C kernels (the deployment baseline). The file is compiled
// for that target by the pragma below, placed after every include so that no
// library code is generated with AVX2; matmul() calls in only after checking
// the CPU. The kernels themselves are in matmul_q8_tile.inc.
//
// Integer dot of a 32-block: the weight codes (unsigned bytes) times the
// int8 activations with vpmaddubsw (pairs into int16) and vpmaddwd (into
// int32 lanes, times the Q6_K sub-block scales where there are some); Q8_0's
// signed codes go through the sign trick (|w| * sign(x, w)).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

#include <immintrin.h>

#include "compute/cpu/blocks.h"
#include "compute/cpu/matmul_kernels.h"

#pragma GCC push_options
// No implicit contraction of a * b + c into FMA: which operations fuse is
// part of the numerics (they follow ggml's), so it is spelled out.
#pragma GCC optimize("fp-contract=off")
#pragma GCC target("avx2,fma,f16c")

namespace triage::cpu::detail {

namespace {

using gguf::tensor_type;

constexpr int tile_r = 2;  // weight rows per tile: 8 accumulators fit the 16 ymm registers
constexpr int tile_c = 4;  // activation rows per tile

struct unpacked;
template <class F>
__m256i int_dot(const unpacked& w, __m256i xv, __m256i aux);

#include "compute/cpu/matmul_q8_tile.inc"

template <class F>
inline __m256i int_dot(const unpacked& w, __m256i xv, __m256i aux) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (std::is_same_v<F, fmt_q8_0> || std::is_same_v<F, fmt_q5_0>) {  // signed codes
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w.u, w.u), _mm256_sign_epi8(xv, w.u));
    return _mm256_madd_epi16(p, ones);
  } else if constexpr (std::is_same_v<F, fmt_q6_k>) {
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(w.u, xv), aux);
    return _mm256_madd_epi16(p, w.sc);
  } else {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w.u, xv), ones);
  }
}

}  // namespace

void matmul_rows_avx2(const matmul_job& job, int64_t n0, int64_t n1) { rows_any(job, n0, n1); }

void quantize_rows_avx2(const float* x, int64_t ldx, int64_t row0, int64_t row1,
                        q8_activations& out) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  for (int64_t i = row0; i < row1; ++i) {
    const float* xi = x + i * ldx;
    int8_t* q = out.q.data() + i * out.k;
    float* d = out.d.data() + i * out.nb;
    float* s = out.s.data() + i * out.nb;
    for (int64_t b = 0; b < out.nb; ++b) {
      const float* xb = xi + b * qk32;
      __m256 v[4];
      __m256 amax = _mm256_setzero_ps();
      for (int j = 0; j < 4; ++j) {
        v[j] = _mm256_loadu_ps(xb + 8 * j);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_mask, v[j]));
      }
      __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
      const float am = _mm_cvtss_f32(m4);
      const float db = am / 127.0f;
      const __m256 id = _mm256_set1_ps(am != 0.0f ? 127.0f / am : 0.0f);
      // cvtps rounds to nearest even, like nearbyint in the scalar version.
      __m256i qi[4];
      for (int j = 0; j < 4; ++j) qi[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], id));
      const __m256i sum32 = _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]),
                                             _mm256_add_epi32(qi[2], qi[3]));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum32), _mm256_extracti128_si256(sum32, 1));
      s4 = _mm_hadd_epi32(s4, s4);
      s4 = _mm_hadd_epi32(s4, s4);
      const int sum = _mm_cvtsi128_si32(s4);
      // Pack 4 x 8 int32 -> 32 int8 in element order (packs interleave lanes).
      const __m256i p16a = _mm256_packs_epi32(qi[0], qi[1]);
      const __m256i p16b = _mm256_packs_epi32(qi[2], qi[3]);
      __m256i p8 = _mm256_packs_epi16(p16a, p16b);
      p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * qk32), p8);
      d[b] = _cvtsh_ss(_cvtss_sh(db, _MM_FROUND_TO_NEAREST_INT));
      s[b] = _cvtsh_ss(_cvtss_sh(db * static_cast<float>(sum), _MM_FROUND_TO_NEAREST_INT));
    }
  }
}

}  // namespace triage::cpu::detail

#pragma GCC pop_options
