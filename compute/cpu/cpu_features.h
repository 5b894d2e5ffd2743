// cpu_features.h: which vector instruction sets the kernels may use, checked
// once at run time (__builtin_cpu_supports), so that one binary runs on any
// x86-64 and picks the fastest path the machine has. Kernels are compiled
// with function-level target attributes, never global -m flags.
//
//   if (triage::cpu::has_avx2()) { ... }              // AVX2 + FMA + F16C
//   triage::cpu::set_isa_limit(triage::cpu::isa::scalar);  // tests: force a path
#pragma once

#include <string_view>

namespace triage::cpu {

// Kernel families, slowest to fastest.
enum class isa {
  scalar = 0,       // portable C++: the fallback and the reference for the fast paths
  avx2 = 1,         // AVX2 + FMA + F16C (the deployment baseline)
  avx512_vnni = 2,  // AVX-512 F/BW/VL + VNNI (VPDPBUSD) on 256-bit vectors
};

// The best family this CPU supports, capped by set_isa_limit().
isa active_isa();
std::string_view isa_name(isa i);
// Caps the family every kernel dispatches to (process-wide; for tests and
// benchmarks comparing paths). Not for use while kernels run on other threads.
// The environment variable TRIAGE_CPU_ISA (scalar, avx2, avx512-vnni) sets
// the initial cap.
void set_isa_limit(isa limit);
// What the hardware supports, ignoring the limit.
isa detected_isa();

inline bool has_avx2() { return active_isa() >= isa::avx2; }
inline bool has_avx512_vnni() { return active_isa() >= isa::avx512_vnni; }

}  // namespace triage::cpu
