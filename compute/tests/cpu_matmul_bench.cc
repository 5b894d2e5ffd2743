// cpu_matmul_bench: throughput of the matmul kernels on SmolLM2-135M's
// shapes, per weight type and kernel family, next to the machine's measured
// single-core peak. A program that prints figures, not a test.
//
//   build/compute/cpu_matmul_bench [threads] [rows]      # defaults: 1, 64
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "compute/cpu/cpu_features.h"
#include "compute/cpu/matmul.h"
#include "compute/cpu/peak.h"
#include "compute/cpu/quantize.h"
#include "compute/cpu/thread_pool.h"

using namespace triage::cpu;
using triage::gguf::tensor_type;

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int64_t m = argc > 2 ? std::atoll(argv[2]) : 64;
  thread_pool pool(threads);
  const peak p = measure_peak();
  std::printf("single-core peak: int8 %.1f GMAC/s (AVX2 maddubs+madd %.1f, VNNI vpdpbusd %.1f), "
              "fp32 FMA %.1f GFLOP/s\n%d threads, %lld activation rows\n\n",
              p.int8_gmacs, p.int8_avx2_gmacs, p.int8_vnni_gmacs, p.fp32_gflops, threads,
              static_cast<long long>(m));
  std::printf("%-5s %-12s %12s %12s %12s %12s\n", "type", "family", "576->1536", "1536->576",
              "576->576", "576->192");
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const std::pair<int64_t, int64_t> shapes[] = {{1536, 576}, {576, 1536}, {576, 576}, {192, 576}};
  for (tensor_type t : {tensor_type::q4_1, tensor_type::q4_0, tensor_type::q8_0, tensor_type::q4_k,
                        tensor_type::q6_k, tensor_type::f16}) {
    for (isa family : {isa::avx2, isa::avx512_vnni}) {
      if (family > detected_isa()) continue;
      std::printf("%-5s %-12s", std::string(triage::gguf::type_name(t)).c_str(),
                  std::string(isa_name(family)).c_str());
      for (const auto& [n, k] : shapes) {
        if (t == tensor_type::q4_k || t == tensor_type::q6_k) {
          if (k % 256 != 0) {
            std::printf(" %12s", "-");
            continue;
          }
        }
        std::vector<float> w(static_cast<size_t>(n * k)), x(static_cast<size_t>(m * k)),
            y(static_cast<size_t>(m * n));
        for (auto& v : w) v = dist(rng);
        for (auto& v : x) v = dist(rng);
        const auto bytes = quantize_weights(t, w, n, k);
        const matrix_view mv{t, n, k, bytes.size() / static_cast<size_t>(n), bytes.data()};
        q8_activations xq;
        quantize_activations(x.data(), m, k, xq);
        const matmul_input in{x.data(), uses_q8(t) ? &xq : nullptr, m, 0};
        matmul_with(family, mv, in, y.data(), pool);  // warm-up
        const double macs = static_cast<double>(n) * static_cast<double>(k) * static_cast<double>(m);
        const int reps = std::max(3, static_cast<int>(1.5e9 / macs));
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < reps; ++i) matmul_with(family, mv, in, y.data(), pool);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf(" %7.1f GMAC", macs * reps / s / 1e9);
      }
      std::printf("\n");
    }
  }
  return 0;
}
