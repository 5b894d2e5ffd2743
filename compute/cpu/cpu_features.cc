#include "compute/cpu/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <string_view>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace triage::cpu {

namespace {

isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports
  // does not know "f16c" (the fuzz build, ops/fuzz.sh, uses clang).
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  if (!avx2) return isa::scalar;
  const bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return vnni ? isa::avx512_vnni : isa::avx2;
#else
  return isa::scalar;
#endif
}

// $TRIAGE_CPU_ISA (scalar, avx2, avx512-vnni) caps the family from the
// start, e.g. to measure the AVX2 path on an AVX-512 machine.
int initial_limit() {
  const char* env = std::getenv("TRIAGE_CPU_ISA");
  if (env == nullptr) return static_cast<int>(isa::avx512_vnni);
  const std::string_view v(env);
  if (v == "scalar") return static_cast<int>(isa::scalar);
  if (v == "avx2") return static_cast<int>(isa::avx2);
  return static_cast<int>(isa::avx512_vnni);
}

std::atomic<int> limit{initial_limit()};

}  // namespace

isa detected_isa() {
  static const isa detected = detect();
  return detected;
}

isa active_isa() {
  const int d = static_cast<int>(detected_isa());
  const int l = limit.load(std::memory_order_relaxed);
  return static_cast<isa>(d < l ? d : l);
}

void set_isa_limit(isa l) { limit.store(static_cast<int>(l), std::memory_order_relaxed); }

std::string_view isa_name(isa i) {
  switch (i) {
    case isa::scalar:
      return "scalar";
    case isa::avx2:
      return "avx2";
    case isa::avx512_vnni:
      return "avx512-vnni";
  }
  return "unknown";
}

}  // namespace triage::cpu
