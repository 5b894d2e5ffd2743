// peak.h: the single-core peak of the instructions the kernels are built
// from, measured with tight dependency-free loops, so benchmarks can state
// what fraction of the machine a kernel uses.
//
//   auto p = triage::cpu::measure_peak();   // ~0.5 s
//   double share = achieved_gmacs / (p.int8_gmacs * threads);
#pragma once

namespace triage::cpu {

struct peak {
  double fp32_gflops = 0;  // 8-wide FMA (AVX2), 2 flops per lane
  double int8_gmacs = 0;   // the integer dot the active kernels use (maddubs+madd, or VPDPBUSD)
  double int8_avx2_gmacs = 0;  // vpmaddubsw + vpmaddwd + vpaddd, 32 MACs per step
  double int8_vnni_gmacs = 0;  // vpdpbusd on 256-bit vectors; 0 without AVX-512 VNNI
};

// One thread; 0 for what the CPU lacks. seconds: time per measurement.
peak measure_peak(double seconds = 0.15);

}  // namespace triage::cpu
