#include "compute/cpu/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "compute/cpu/blocks.h"
#include "compute/cpu/cpu_features.h"
#include "compute/cpu/half.h"
#include "compute/cpu/thread_pool.h"

namespace triage::cpu {

namespace detail {
// matmul_avx2.cc
void quantize_rows_avx2(const float* x, int64_t ldx, int64_t row0, int64_t row1,
                        q8_activations& out);
}  // namespace detail

namespace {

using gguf::tensor_type;

// 1 / d, or 0 for a block of zeros (d = 0).
float inverse_or_zero(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }

// The first of the values of largest magnitude among x[0..n), sign kept.
float largest_magnitude(const float* x, int n) {
  float amax = 0.0f, vmax = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      vmax = x[j];
    }
  }
  return vmax;
}

// Row i of `out`: its codes, and per block of 32 its scale d and scaled sum s.
struct q8_row {
  int8_t* q;
  float* d;
  float* s;
};

q8_row row_of(q8_activations& out, int64_t i) {
  return {out.q.data() + i * out.k, out.d.data() + i * out.nb, out.s.data() + i * out.nb};
}

void quantize_rows_scalar(const float* x, int64_t ldx, int64_t row0, int64_t row1,
                          q8_activations& out) {
  for (int64_t i = row0; i < row1; ++i) {
    const float* xi = x + i * ldx;
    const auto [q, d, s] = row_of(out, i);
    for (int64_t b = 0; b < out.nb; ++b) {
      const float* xb = xi + b * qk32;
      float amax = 0.0f;
      for (int j = 0; j < qk32; ++j) amax = std::max(amax, std::fabs(xb[j]));
      const float db = amax / 127.0f;
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      int sum = 0;
      for (int j = 0; j < qk32; ++j) {
        const int v = static_cast<int>(std::nearbyint(xb[j] * id));
        q[b * qk32 + j] = static_cast<int8_t>(v);
        sum += v;
      }
      // ggml keeps these scales in F16; rounding them the same way keeps the
      // engine's numbers closest to llama.cpp's.
      d[b] = fp16_to_fp32(fp32_to_fp16(db));
      s[b] = fp16_to_fp32(fp32_to_fp16(db * static_cast<float>(sum)));
    }
  }
}

// ggml's Q8_K (quantize_row_q8_K_ref): per 256 values, v the value of
// largest magnitude (the first one on ties), iscale = -127 / v, codes
// min(127, round-half-even(iscale * x)), d = 1 / iscale in float. Stored as
// 8 blocks of 32 sharing d; s is d * the block's code sum, unrounded (ggml's
// Q4_K dot takes the mins term from the integer sums times d in float).
void quantize_rows_q8_k(const float* x, int64_t ldx, int64_t row0, int64_t row1,
                        q8_activations& out) {
  for (int64_t i = row0; i < row1; ++i) {
    const float* xi = x + i * ldx;
    const auto [q, d, s] = row_of(out, i);
    for (int64_t sb = 0; sb < out.k / qk_k; ++sb) {
      const float* xb = xi + sb * qk_k;
      int8_t* qb = q + sb * qk_k;
      const float vmax = largest_magnitude(xb, qk_k);  // 0 only where all are
      float db = 0.0f;
      if (vmax == 0.0f) {
        std::fill(qb, qb + qk_k, int8_t{0});
      } else {
        const float iscale = -127.0f / vmax;
        for (int j = 0; j < qk_k; ++j) {
          const int v = static_cast<int>(std::nearbyint(iscale * xb[j]));
          qb[j] = static_cast<int8_t>(std::min(127, v));
        }
        db = 1.0f / iscale;
      }
      for (int b = 0; b < qk_k / qk32; ++b) {
        int sum = 0;
        for (int j = 0; j < qk32; ++j) sum += qb[b * qk32 + j];
        d[sb * 8 + b] = db;
        s[sb * 8 + b] = db * static_cast<float>(sum);
      }
    }
  }
}

void prepare(q8_activations& out, int64_t m, int64_t k, q8_format format) {
  const int64_t unit = format == q8_format::q8_k ? qk_k : qk32;
  if (k % unit != 0) {
    throw std::invalid_argument("quantize_activations: k = " + std::to_string(k) +
                                " is not a multiple of " + std::to_string(unit) +
                                (format == q8_format::q8_k ? " (Q8_K)" : ""));
  }
  out.format = format;
  out.m = m;
  out.k = k;
  out.nb = k / qk32;
  const int64_t groups = (m + q8_activations::group - 1) / q8_activations::group;
  const auto padded = static_cast<size_t>(groups * q8_activations::group);
  const auto need = padded * static_cast<size_t>(k);
  if (out.q.size() < need) out.q.resize(need);
  // Padding rows: zero codes, so the kernels may compute them harmlessly.
  std::fill(out.q.begin() + m * k, out.q.begin() + static_cast<int64_t>(need), int8_t{0});
  const auto scales = padded * static_cast<size_t>(out.nb);
  if (out.d.size() < scales) {
    out.d.resize(scales);
    out.s.resize(scales);
    out.dt.resize(scales);
    out.st.resize(scales);
  }
}

// Fills the group-transposed copies of d and s (padding rows get 0).
void transpose_groups(q8_activations& out) {
  const int64_t nb = out.nb, g4 = q8_activations::group;
  const int64_t groups = (out.m + g4 - 1) / g4;
  for (int64_t g = 0; g < groups; ++g) {
    float* dt = out.dt.data() + g * nb * g4;
    float* st = out.st.data() + g * nb * g4;
    for (int64_t r = 0; r < g4; ++r) {
      const int64_t row = g * g4 + r;
      for (int64_t b = 0; b < nb; ++b) {
        dt[b * g4 + r] = row < out.m ? out.d[row * nb + b] : 0.0f;
        st[b * g4 + r] = row < out.m ? out.s[row * nb + b] : 0.0f;
      }
    }
  }
}

// --- weight encoders (round to nearest; for tests and tiny models) ---

int nearest(float v) { return static_cast<int>(std::nearbyint(v)); }

void put_f16(std::byte* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// Byte j of qs: code(xb[j]) in the low nibble, code(xb[j + 16]) in the high
// one (Q4_0 and Q4_1 blocks of 32).
template <class Code>
void pack_nibbles(const float* xb, uint8_t* qs, Code code) {
  for (int j = 0; j < qk32 / 2; ++j) {
    qs[j] = static_cast<uint8_t>(code(xb[j]) | (code(xb[j + 16]) << 4));
  }
}

void encode_q8_0(const float* x, block_q8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / qk32; ++i) {
    float amax = 0.0f;
    for (int j = 0; j < qk32; ++j) amax = std::max(amax, std::fabs(x[i * qk32 + j]));
    const float d = amax / 127.0f;
    const float id = inverse_or_zero(d);
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < qk32; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::clamp(nearest(x[i * qk32 + j] * id), -127, 127));
    }
  }
}

void encode_q4_0(const float* x, block_q4_0* y, int64_t n) {
  for (int64_t i = 0; i < n / qk32; ++i) {
    // The value of largest magnitude maps to -8, so the whole range -8..7 is used.
    const float d = largest_magnitude(x + i * qk32, qk32) / -8.0f;
    const float id = inverse_or_zero(d);
    y[i].d = fp32_to_fp16(d);
    pack_nibbles(x + i * qk32, y[i].qs,
                 [id](float v) { return std::clamp(nearest(v * id) + 8, 0, 15); });
  }
}

void encode_q5_0(const float* x, block_q5_0* y, int64_t n) {
  for (int64_t i = 0; i < n / qk32; ++i) {
    // As Q4_0: the value of largest magnitude maps to -16 (range -16..15).
    const float d = largest_magnitude(x + i * qk32, qk32) / -16.0f;
    const float id = inverse_or_zero(d);
    y[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < qk32 / 2; ++j) {
      const int a = std::clamp(nearest(x[i * qk32 + j] * id) + 16, 0, 31);
      const int b = std::clamp(nearest(x[i * qk32 + j + 16] * id) + 16, 0, 31);
      y[i].qs[j] = static_cast<uint8_t>((a & 0xf) | ((b & 0xf) << 4));
      qh |= static_cast<uint32_t>(a >> 4) << j;
      qh |= static_cast<uint32_t>(b >> 4) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void encode_q4_1(const float* x, block_q4_1* y, int64_t n) {
  for (int64_t i = 0; i < n / qk32; ++i) {
    float lo = x[i * qk32], hi = x[i * qk32];
    for (int j = 1; j < qk32; ++j) {
      lo = std::min(lo, x[i * qk32 + j]);
      hi = std::max(hi, x[i * qk32 + j]);
    }
    const float d = (hi - lo) / 15.0f;
    const float id = inverse_or_zero(d);
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(lo);
    pack_nibbles(x + i * qk32, y[i].qs,
                 [id, lo](float v) { return std::clamp(nearest((v - lo) * id), 0, 15); });
  }
}

void encode_q4_k(const float* x, block_q4_k* y, int64_t n) {
  for (int64_t i = 0; i < n / qk_k; ++i) {
    const float* xb = x + i * qk_k;
    float scale[8], mins[8];  // per sub-block: x ~= scale * q - mins, mins >= 0
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
      float lo = 0.0f, hi = 0.0f;  // the offset is a subtraction: keep lo <= 0
      for (int l = 0; l < 32; ++l) {
        lo = std::min(lo, xb[32 * j + l]);
        hi = std::max(hi, xb[32 * j + l]);
      }
      scale[j] = (hi - lo) / 15.0f;
      mins[j] = -lo;
      max_scale = std::max(max_scale, scale[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float d = max_scale / 63.0f, dmin = max_min / 63.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].dmin = fp32_to_fp16(dmin);
    const float d16 = fp16_to_fp32(y[i].d), dmin16 = fp16_to_fp32(y[i].dmin);
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = static_cast<uint8_t>(d16 > 0 ? std::clamp(nearest(scale[j] / d16), 0, 63) : 0);
      mn[j] = static_cast<uint8_t>(dmin16 > 0 ? std::clamp(nearest(mins[j] / dmin16), 0, 63) : 0);
    }
    for (int j = 0; j < 4; ++j) {
      y[i].scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
      y[i].scales[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
      y[i].scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4));
    }
    for (int c = 0; c < 4; ++c) {
      for (int half = 0; half < 2; ++half) {
        const int j = 2 * c + half;
        const float ds = d16 * sc[j], dm = dmin16 * mn[j];
        for (int l = 0; l < 32; ++l) {
          const int q = ds > 0 ? std::clamp(nearest((xb[32 * j + l] + dm) / ds), 0, 15) : 0;
          uint8_t& byte = y[i].qs[32 * c + l];
          byte = static_cast<uint8_t>(half == 0 ? (byte & 0xf0) | q : (byte & 0x0f) | (q << 4));
        }
      }
    }
  }
}

void encode_q6_k(const float* x, block_q6_k* y, int64_t n) {
  for (int64_t i = 0; i < n / qk_k; ++i) {
    const float* xb = x + i * qk_k;
    float scale[16];
    float max_abs_scale = 0.0f;
    for (int j = 0; j < 16; ++j) {
      float amax = 0.0f;
      for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(xb[16 * j + l]));
      scale[j] = amax / 31.0f;
      max_abs_scale = std::max(max_abs_scale, scale[j]);
    }
    const float d = max_abs_scale / 127.0f;
    y[i].d = fp32_to_fp16(d);
    const float d16 = fp16_to_fp32(y[i].d);
    uint8_t q[qk_k];
    for (int j = 0; j < 16; ++j) {
      const int sc = d16 > 0 ? std::clamp(nearest(scale[j] / d16), -128, 127) : 0;
      y[i].scales[j] = static_cast<int8_t>(sc);
      const float ds = d16 * static_cast<float>(sc);
      for (int l = 0; l < 16; ++l) {
        const int v = ds != 0 ? std::clamp(nearest(xb[16 * j + l] / ds), -32, 31) : 0;
        q[16 * j + l] = static_cast<uint8_t>(v + 32);
      }
    }
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int h = 0; h < 2; ++h) {
      uint8_t* ql = y[i].ql + 64 * h;
      uint8_t* qh = y[i].qh + 32 * h;
      const uint8_t* qq = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((qq[l] & 0xf) | ((qq[l + 64] & 0xf) << 4));
        ql[l + 32] = static_cast<uint8_t>((qq[l + 32] & 0xf) | ((qq[l + 96] & 0xf) << 4));
        qh[l] = static_cast<uint8_t>((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) |
                                     ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
      }
    }
  }
}

void encode_f32(const float* x, std::byte* y, int64_t n) {
  std::memcpy(y, x, static_cast<size_t>(n) * 4);
}

void encode_f16(const float* x, std::byte* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) put_f16(y + 2 * j, x[j]);
}

void encode_bf16(const float* x, std::byte* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t h = fp32_to_bf16(x[j]);
    std::memcpy(y + 2 * j, &h, 2);
  }
}

// Writes a row of n values (a whole number of blocks) at y.
using encoder = void (*)(const float* x, std::byte* y, int64_t n);

// A block encoder on a row's raw bytes.
template <class Block, void (*Encode)(const float*, Block*, int64_t)>
void encode_row(const float* x, std::byte* y, int64_t n) {
  Encode(x, reinterpret_cast<Block*>(y), n);
}

// The encoder of a type; null for one quantize_weights cannot write.
encoder encoder_for(tensor_type t) {
  switch (t) {
    case tensor_type::f32: return encode_f32;
    case tensor_type::f16: return encode_f16;
    case tensor_type::bf16: return encode_bf16;
    case tensor_type::q8_0: return encode_row<block_q8_0, encode_q8_0>;
    case tensor_type::q4_0: return encode_row<block_q4_0, encode_q4_0>;
    case tensor_type::q4_1: return encode_row<block_q4_1, encode_q4_1>;
    case tensor_type::q5_0: return encode_row<block_q5_0, encode_q5_0>;
    case tensor_type::q4_k: return encode_row<block_q4_k, encode_q4_k>;
    case tensor_type::q6_k: return encode_row<block_q6_k, encode_q6_k>;
    default: return nullptr;
  }
}

}  // namespace

q8_format activation_format(tensor_type t) {
  // Q4_K stays on the per-32 format: see quantize.h.
  return t == tensor_type::q6_k ? q8_format::q8_k : q8_format::q8_0;
}

void quantize_activations(const float* x, int64_t m, int64_t k, q8_activations& out,
                          thread_pool* pool, int64_t ldx, q8_format format) {
  prepare(out, m, k, format);
  if (ldx == 0) ldx = k;
  auto work = [&](int64_t r0, int64_t r1) {
    if (format == q8_format::q8_k) {
      quantize_rows_q8_k(x, ldx, r0, r1, out);
    } else if (has_avx2()) {
      detail::quantize_rows_avx2(x, ldx, r0, r1, out);
    } else {
      quantize_rows_scalar(x, ldx, r0, r1, out);
    }
  };
  if (pool != nullptr && m > 1) {
    pool->parallel_for(m, 8, work);
  } else {
    work(0, m);
  }
  transpose_groups(out);
}

void quantize_activations_reference(const float* x, int64_t m, int64_t k, q8_activations& out,
                                    int64_t ldx, q8_format format) {
  prepare(out, m, k, format);
  if (format == q8_format::q8_k) {
    quantize_rows_q8_k(x, ldx == 0 ? k : ldx, 0, m, out);
  } else {
    quantize_rows_scalar(x, ldx == 0 ? k : ldx, 0, m, out);
  }
  transpose_groups(out);
}

bool can_quantize(tensor_type t) { return encoder_for(t) != nullptr; }

std::vector<std::byte> quantize_weights(tensor_type t, std::span<const float> x, int64_t rows,
                                        int64_t cols) {
  if (!can_quantize(t)) {
    throw std::invalid_argument("quantize_weights: unsupported type " +
                                std::string(gguf::type_name(t)));
  }
  if (static_cast<int64_t>(x.size()) != rows * cols) {
    throw std::invalid_argument("quantize_weights: data size does not match rows * cols");
  }
  const auto rb = gguf::row_bytes(t, static_cast<uint64_t>(cols));
  if (!rb) {
    throw std::invalid_argument("quantize_weights: " + std::to_string(cols) +
                                " columns are not a whole number of " +
                                std::string(gguf::type_name(t)) + " blocks");
  }
  const encoder encode = encoder_for(t);
  std::vector<std::byte> out(static_cast<size_t>(rows) * *rb);
  for (int64_t r = 0; r < rows; ++r) {
    encode(x.data() + r * cols, out.data() + r * static_cast<int64_t>(*rb), cols);
  }
  return out;
}

}  // namespace triage::cpu
