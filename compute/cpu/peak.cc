#include "compute/cpu/peak.h"

#include <chrono>
#include <cstdint>

#include <immintrin.h>

#include "compute/cpu/cpu_features.h"

namespace triage::cpu {

namespace {

using clock_type = std::chrono::steady_clock;

// Runs `round` until at least `seconds` have passed; returns the operations
// per second, in billions. A round is 1000 steps of 12 independent chains
// (enough to cover the latency of the instruction), `ops_per_step` each.
// The rounds are lambdas with the target attribute of the instructions they
// time: a lambda does not take it from the function it is written in.
template <class Round>
double giga_ops_per_second(double seconds, int ops_per_step, Round&& round) {
  int64_t steps = 0;
  const auto t0 = clock_type::now();
  double dt = 0;
  do {
    round();
    steps += 1000 * 12;
    dt = std::chrono::duration<double>(clock_type::now() - t0).count();
  } while (dt < seconds);
  return static_cast<double>(steps) * ops_per_step / dt / 1e9;
}

__attribute__((target("avx2,fma"))) double fma_loop(double seconds) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(1.0f + static_cast<float>(i) * 1e-3f);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  const double g = giga_ops_per_second(seconds, 16, [&]() __attribute__((target("avx2,fma"))) {
    __m256 r[12];  // in registers: a store to a[] could alias b and c
    for (int i = 0; i < 12; ++i) r[i] = a[i];
    for (int rep = 0; rep < 1000; ++rep) {
      for (int i = 0; i < 12; ++i) r[i] = _mm256_fmadd_ps(r[i], b, c);
    }
    for (int i = 0; i < 12; ++i) a[i] = r[i];
  });
  volatile float sink = 0;
  for (int i = 0; i < 12; ++i) sink = sink + _mm256_cvtss_f32(a[i]);
  return g;
}

__attribute__((target("avx2"))) double maddubs_loop(double seconds) {
  __m256i a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_epi32(i);
  const __m256i w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
  const double g = giga_ops_per_second(seconds, 32, [&]() __attribute__((target("avx2"))) {
    __m256i r[12];  // as in fma_loop
    for (int i = 0; i < 12; ++i) r[i] = a[i];
    for (int rep = 0; rep < 1000; ++rep) {
      for (int i = 0; i < 12; ++i) {
        r[i] = _mm256_add_epi32(r[i], _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones));
      }
    }
    for (int i = 0; i < 12; ++i) a[i] = r[i];
  });
  volatile int sink = 0;
  for (int i = 0; i < 12; ++i) sink = sink + _mm256_cvtsi256_si32(a[i]);
  return g;
}

__attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))) double vnni_loop(double seconds) {
  __m256i a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_epi32(i);
  const __m256i w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(-2);
  const double g = giga_ops_per_second(
      seconds, 32, [&]() __attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))) {
        __m256i r[12];  // as in fma_loop
        for (int i = 0; i < 12; ++i) r[i] = a[i];
        for (int rep = 0; rep < 1000; ++rep) {
          for (int i = 0; i < 12; ++i) r[i] = _mm256_dpbusd_epi32(r[i], w, x);
        }
        for (int i = 0; i < 12; ++i) a[i] = r[i];
      });
  volatile int sink = 0;
  for (int i = 0; i < 12; ++i) sink = sink + _mm256_cvtsi256_si32(a[i]);
  return g;
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
