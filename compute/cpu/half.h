// half.h: IEEE half (F16) and bfloat16 (BF16) <-> float conversions, scalar
// and exact (round to nearest even), for the dequantizers, the reference
// kernels and the quantizers. Vector kernels convert with F16C instead.
//
//   uint16_t h = triage::cpu::fp32_to_fp16(0.5f);
//   float f = triage::cpu::fp16_to_fp32(h);        // 0.5f
//   float g = triage::cpu::bf16_to_fp32(triage::cpu::fp32_to_bf16(1.0f));
#pragma once

#include <bit>
#include <cstdint>

namespace triage::cpu {

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) {  // inf / nan
    return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  }
  if (exp == 0) {
    // Zero or subnormal: the value is mant * 2^-24, exact in float.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    return sign != 0 ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf / nan (keep nan quiet)
    return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
  }
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (ax < 0x38800000u) {
    // Below the smallest normal half: round |f| / 2^-24 to an integer (the
    // subnormal mantissa); float arithmetic rounds to nearest even here.
    const float v = std::bit_cast<float>(ax) * 0x1p24f;
    const float r = v + 0x1p23f - 0x1p23f;  // exact round-to-even for v < 2^23
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits.
  uint32_t h = ((ax >> 13) - (112u << 10));
  const uint32_t rest = ax & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) != 0)) ++h;  // may carry into exp: fine
  return static_cast<uint16_t>(sign | h);
}

inline float bf16_to_fp32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

inline uint16_t fp32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet nan
  x += 0x7fffu + ((x >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace triage::cpu
