#include "compute/cpu/dequantize.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "compute/cpu/blocks.h"
#include "compute/cpu/half.h"

namespace triage::cpu {

namespace {

using gguf::tensor_type;

template <class B>
const B* blocks(const std::byte* src) {
  return reinterpret_cast<const B*>(src);
}

void dequantize_q4_0(const std::byte* src, float* y, int64_t n) {
  const auto* b = blocks<block_q4_0>(src);
  for (int64_t i = 0; i < n / qk32; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < qk32 / 2; ++j) {
      y[i * qk32 + j] = d * static_cast<float>((b[i].qs[j] & 0xf) - 8);
      y[i * qk32 + j + 16] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
    }
  }
}

void dequantize_q4_1(const std::byte* src, float* y, int64_t n) {
  const auto* b = blocks<block_q4_1>(src);
  for (int64_t i = 0; i < n / qk32; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    const float m = fp16_to_fp32(b[i].m);
    for (int j = 0; j < qk32 / 2; ++j) {
      y[i * qk32 + j] = d * static_cast<float>(b[i].qs[j] & 0xf) + m;
      y[i * qk32 + j + 16] = d * static_cast<float>(b[i].qs[j] >> 4) + m;
    }
  }
}

void dequantize_q5_0(const std::byte* src, float* y, int64_t n) {
  const auto* b = blocks<block_q5_0>(src);
  for (int64_t i = 0; i < n / qk32; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    uint32_t qh = 0;
    std::memcpy(&qh, b[i].qh, 4);
    for (int j = 0; j < qk32 / 2; ++j) {
      const int lo = (b[i].qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1) << 4);
      const int hi = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[i * qk32 + j] = d * static_cast<float>(lo - 16);
      y[i * qk32 + j + 16] = d * static_cast<float>(hi - 16);
    }
  }
}

void dequantize_q8_0(const std::byte* src, float* y, int64_t n) {
  const auto* b = blocks<block_q8_0>(src);
  for (int64_t i = 0; i < n / qk32; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < qk32; ++j) y[i * qk32 + j] = d * static_cast<float>(b[i].qs[j]);
  }
}

void dequantize_q4_k(const std::byte* src, float* y, int64_t n) {
  const auto* b = blocks<block_q4_k>(src);
  for (int64_t i = 0; i < n / qk_k; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    const float dmin = fp16_to_fp32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    float* out = y + i * qk_k;
    for (int c = 0; c < 4; ++c) {  // chunks of 64: two sub-blocks sharing 32 bytes
      uint8_t sc0 = 0, m0 = 0, sc1 = 0, m1 = 0;
      q4_k_scale_min(2 * c, b[i].scales, sc0, m0);
      q4_k_scale_min(2 * c + 1, b[i].scales, sc1, m1);
      const float d0 = d * sc0, mm0 = dmin * m0, d1 = d * sc1, mm1 = dmin * m1;
      for (int l = 0; l < 32; ++l) {
        out[64 * c + l] = d0 * static_cast<float>(q[32 * c + l] & 0xf) - mm0;
        out[64 * c + 32 + l] = d1 * static_cast<float>(q[32 * c + l] >> 4) - mm1;
      }
    }
  }
}

void dequantize_q6_k(const std::byte* src, float* y, int64_t n) {
  const auto* b = blocks<block_q6_k>(src);
  for (int64_t i = 0; i < n / qk_k; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const uint8_t* qh = b[i].qh + 32 * h;
      const int8_t* sc = b[i].scales + 8 * h;
      float* out = y + i * qk_k + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int s = l / 16;
        const int q0 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q1 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        out[l] = d * static_cast<float>(sc[s + 0] * q0);
        out[l + 32] = d * static_cast<float>(sc[s + 2] * q1);
        out[l + 64] = d * static_cast<float>(sc[s + 4] * q2);
        out[l + 96] = d * static_cast<float>(sc[s + 6] * q3);
      }
    }
  }
}

}  // namespace

bool can_dequantize(tensor_type t) {
  switch (t) {
    case tensor_type::f32:
    case tensor_type::f16:
    case tensor_type::bf16:
    case tensor_type::q8_0:
    case tensor_type::q4_0:
    case tensor_type::q4_1:
    case tensor_type::q5_0:
    case tensor_type::q4_k:
    case tensor_type::q6_k:
      return true;
    default:
      return false;
  }
}

void dequantize_row(tensor_type t, const std::byte* src, float* dst, int64_t n) {
  switch (t) {
    case tensor_type::f32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case tensor_type::f16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      return;
    case tensor_type::bf16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return;
    case tensor_type::q8_0:
      return dequantize_q8_0(src, dst, n);
    case tensor_type::q4_0:
      return dequantize_q4_0(src, dst, n);
    case tensor_type::q4_1:
      return dequantize_q4_1(src, dst, n);
    case tensor_type::q5_0:
      return dequantize_q5_0(src, dst, n);
    case tensor_type::q4_k:
      return dequantize_q4_k(src, dst, n);
    case tensor_type::q6_k:
      return dequantize_q6_k(src, dst, n);
    default:
      throw std::invalid_argument("dequantize_row: unsupported tensor type " +
                                  std::string(gguf::type_name(t)));
  }
}

}  // namespace triage::cpu
