// AVX-512 VNNI kernels: the AVX2 kernels' arithmetic on 256-bit vectors,
// with VPDPBUSD forming a block's integer dot in one instruction and the 32
// vector registers of AVX-512VL holding 4 x 4 tiles (16 accumulators). The
// float operations, and so the results, are exactly those of the AVX2 path.
// Compiled for that target by the pragma below (after every include); used
// only when the CPU reports AVX-512 F/BW/VL and VNNI.
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
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")

namespace triage::cpu::detail {

namespace {

using gguf::tensor_type;

constexpr int tile_r = 4;
constexpr int tile_c = 4;

struct unpacked;
template <class F>
__m256i int_dot(const unpacked& w, __m256i xv, __m256i aux);

#include "compute/cpu/matmul_q8_tile.inc"

template <class F>
inline __m256i int_dot(const unpacked& w, __m256i xv, __m256i aux) {
  if constexpr (std::is_same_v<F, fmt_q8_0> || std::is_same_v<F, fmt_q5_0>) {  // signed codes
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w.u, w.u),
                               _mm256_sign_epi8(xv, w.u));
  } else if constexpr (std::is_same_v<F, fmt_q6_k>) {
    // Per-16 scales: pairs into int16 first, as in the AVX2 path.
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(w.u, xv), aux);
    return _mm256_madd_epi16(p, w.sc);
  } else {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w.u, xv);
  }
}

}  // namespace

void matmul_rows_avx512(const matmul_job& job, int64_t n0, int64_t n1) { rows_any(job, n0, n1); }

}  // namespace triage::cpu::detail

#pragma GCC pop_options
