#include "compute/cpu/ops.h"

#include <algorithm>
#include <cmath>

#include <immintrin.h>

#include "compute/cpu/cpu_features.h"
#include "compute/cpu/half.h"

namespace triage::cpu {

void rmsnorm(const float* x, const float* weight, float* y, int64_t n, float eps) {
  // Squares in float, summed in double: ggml's order of rounding.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  if (weight != nullptr) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * weight[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void rope_table::prepare(std::span<const int32_t> positions) {
  const int half = n_rot_ / 2;
  cos_.resize(positions.size() * static_cast<size_t>(half));
  sin_.resize(positions.size() * static_cast<size_t>(half));
  const float theta_scale = std::pow(freq_base_, -2.0f / static_cast<float>(n_rot_));
  for (size_t p = 0; p < positions.size(); ++p) {
    float theta = static_cast<float>(positions[p]);
    for (int i = 0; i < half; ++i) {
      // Unscaled: the angle itself (no operation, so no rounding, added).
      float angle = theta;
      if (!freq_factors_.empty()) angle = angle / freq_factors_[static_cast<size_t>(i)];
      if (freq_scale_ != 1.0f) angle = freq_scale_ * angle;
      cos_[p * half + i] = std::cos(angle);
      sin_[p * half + i] = std::sin(angle);
      theta *= theta_scale;
    }
  }
}

void rope_table::apply_normal(float* x, int64_t row) const {
  const int half = n_rot_ / 2;
  const float* c = cos_.data() + row * half;
  const float* s = sin_.data() + row * half;
  for (int i = 0; i < half; ++i) {
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    // As llama.cpp's CPU build rounds it (the compiler contracts each
    // rotated value into one fused multiply-add): bit-equal to its RoPE.
    x[2 * i] = std::fma(x0, c[i], -(x1 * s[i]));
    x[2 * i + 1] = std::fma(x0, s[i], x1 * c[i]);
  }
}

void rope_table::apply_neox(float* x, int64_t row) const {
  const int half = n_rot_ / 2;
  const float* c = cos_.data() + row * half;
  const float* s = sin_.data() + row * half;
  for (int i = 0; i < half; ++i) {
    const float x0 = x[i], x1 = x[i + half];
    x[i] = std::fma(x0, c[i], -(x1 * s[i]));  // fused as in apply_normal
    x[i + half] = std::fma(x0, s[i], x1 * c[i]);
  }
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  // The sum is taken as llama.cpp's CPU backend takes it: chunks of 16
  // reduced in float ((a[i] + a[i+8]), then [i+4], then pairs), chunk sums
  // added in double; a short last chunk is padded with zeros (its masked
  // positions).
  double sum = 0.0;
  for (int64_t i = 0; i < n; i += 16) {
    float e[16] = {};
    for (int64_t l = 0; l < 16 && i + l < n; ++l) e[l] = x[i + l] = std::exp(x[i + l] - mx);
    float s8[8], s4[4];
    for (int l = 0; l < 8; ++l) s8[l] = e[l + 8] + e[l];
    for (int l = 0; l < 4; ++l) s4[l] = s8[l + 4] + s8[l];
    sum += static_cast<double>((s4[0] + s4[2]) + (s4[1] + s4[3]));
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
}

namespace {

// exp(x) for 8 floats: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two
// for an exact reduction), e^r by its Taylor series to r^7 (truncation
// below 1e-8 relative), times 2^n built in the exponent bits. Within 2 ulp
// of std::exp over the range SiLU needs; inputs are clamped to +-87, where
// SiLU is 0 or x anyway.
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(87.0f)), _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2,fma"))) void swiglu_avx2(const float* gate, const float* up,
                                                     float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp8(_mm256_xor_ps(g, sign));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)),
                                            _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  if (has_avx2()) {
    swiglu_avx2(gate, up, out, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void gelu(float* x, int64_t n) {
  constexpr float sqrt_2_over_pi = 0.79788456080286535588f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(sqrt_2_over_pi * v * (1.0f + 0.044715f * v * v)));
  }
}

void add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

namespace {

__attribute__((target("avx2,f16c"))) void round_to_f16_f16c(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) x[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

}  // namespace

void round_to_f16(float* x, int64_t n) {
  if (has_avx2()) {
    round_to_f16_f16c(x, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) x[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
}

}  // namespace triage::cpu
