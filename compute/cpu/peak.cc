#include "compute/cpu/peak.h"

#include <chrono>
#include <cstdint>

#include <immintrin.h>

#include "compute/cpu/cpu_features.h"

namespace triage::cpu {

namespace {

using clock_type = std::chrono::steady_clock;

// Each loop keeps 12 independent chains, enough to cover the latency of the
// instruction, and runs for at least `seconds`.
__attribute__((target("avx2,fma"))) double fma_loop(double seconds) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(1.0f + static_cast<float>(i) * 1e-3f);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  int64_t steps = 0;
  const auto t0 = clock_type::now();
  double dt = 0;
  do {
    for (int rep = 0; rep < 1000; ++rep) {
      for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], b, c);
    }
    steps += 1000 * 12;
    dt = std::chrono::duration<double>(clock_type::now() - t0).count();
  } while (dt < seconds);
  volatile float sink = 0;
  for (int i = 0; i < 12; ++i) sink = sink + _mm256_cvtss_f32(a[i]);
  return static_cast<double>(steps) * 16 / dt / 1e9;
}

__attribute__((target("avx2"))) double maddubs_loop(double seconds) {
  __m256i a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_epi32(i);
  const __m256i w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
  int64_t steps = 0;
  const auto t0 = clock_type::now();
  double dt = 0;
  do {
    for (int rep = 0; rep < 1000; ++rep) {
      for (int i = 0; i < 12; ++i) {
        a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones));
      }
    }
    steps += 1000 * 12;
    dt = std::chrono::duration<double>(clock_type::now() - t0).count();
  } while (dt < seconds);
  volatile int sink = 0;
  for (int i = 0; i < 12; ++i) sink = sink + _mm256_cvtsi256_si32(a[i]);
  return static_cast<double>(steps) * 32 / dt / 1e9;
}

__attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))) double vnni_loop(double seconds) {
  __m256i a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_epi32(i);
  const __m256i w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(-2);
  int64_t steps = 0;
  const auto t0 = clock_type::now();
  double dt = 0;
  do {
    for (int rep = 0; rep < 1000; ++rep) {
      for (int i = 0; i < 12; ++i) a[i] = _mm256_dpbusd_epi32(a[i], w, x);
    }
    steps += 1000 * 12;
    dt = std::chrono::duration<double>(clock_type::now() - t0).count();
  } while (dt < seconds);
  volatile int sink = 0;
  for (int i = 0; i < 12; ++i) sink = sink + _mm256_cvtsi256_si32(a[i]);
  return static_cast<double>(steps) * 32 / dt / 1e9;
}

}  // namespace

peak measure_peak(double seconds) {
  peak p;
  if (detected_isa() >= isa::avx2) {
    p.fp32_gflops = fma_loop(seconds);
    p.int8_avx2_gmacs = maddubs_loop(seconds);
  }
  if (detected_isa() >= isa::avx512_vnni) p.int8_vnni_gmacs = vnni_loop(seconds);
  p.int8_gmacs = has_avx512_vnni() ? p.int8_vnni_gmacs : p.int8_avx2_gmacs;
  return p;
}

}  // namespace triage::cpu
