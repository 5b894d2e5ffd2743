// The portable kernels: the fallback on CPUs without AVX2, and the
// bit-for-bit model of what the vector kernels compute (same decomposition:
// integer dot of the weight codes with the int8 activations per 32-block,
// times the block scales, plus the offset term from the activation sums).
#include <cstring>

#include "compute/cpu/blocks.h"
#include "compute/cpu/half.h"
#include "compute/cpu/matmul_kernels.h"

namespace triage::cpu::detail {

namespace {

using gguf::tensor_type;

// One 32-element block of a weight row, decoded to integer codes:
// w[l] = dw * scale_of(l) * code[l] + mw, where scale_of(l) is 1 except for
// Q6_K (its per-16 int8 scales, sc[0] for l < 16 and sc[1] after).
struct block_codes {
  int code[qk32];
  float dw = 0;
  float mw = 0;  // multiplies the activation block's sum (q8_activations::s)
  int sc[2] = {1, 1};
};

void decode(tensor_type t, const std::byte* row, int64_t b, block_codes& out) {
  switch (t) {
    case tensor_type::q4_0: {
      const auto& blk = reinterpret_cast<const block_q4_0*>(row)[b];
      out.dw = fp16_to_fp32(blk.d);
      out.mw = -8.0f * out.dw;
      for (int j = 0; j < 16; ++j) {
        out.code[j] = blk.qs[j] & 0xf;
        out.code[j + 16] = blk.qs[j] >> 4;
      }
      return;
    }
    case tensor_type::q4_1: {
      const auto& blk = reinterpret_cast<const block_q4_1*>(row)[b];
      out.dw = fp16_to_fp32(blk.d);
      out.mw = fp16_to_fp32(blk.m);
      for (int j = 0; j < 16; ++j) {
        out.code[j] = blk.qs[j] & 0xf;
        out.code[j + 16] = blk.qs[j] >> 4;
      }
      return;
    }
    case tensor_type::q5_0: {
      // Signed codes q - 16 (as ggml's Q5_0 x Q8_0 dot): no offset term.
      const auto& blk = reinterpret_cast<const block_q5_0*>(row)[b];
      uint32_t qh = 0;
      std::memcpy(&qh, blk.qh, 4);
      out.dw = fp16_to_fp32(blk.d);
      out.mw = 0.0f;
      for (int j = 0; j < 16; ++j) {
        out.code[j] = ((blk.qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1) << 4)) - 16;
        out.code[j + 16] = ((blk.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4)) - 16;
      }
      return;
    }
    case tensor_type::q8_0: {
      const auto& blk = reinterpret_cast<const block_q8_0*>(row)[b];
      out.dw = fp16_to_fp32(blk.d);
      out.mw = 0.0f;
      for (int j = 0; j < qk32; ++j) out.code[j] = blk.qs[j];
      return;
    }
    case tensor_type::q4_k: {
      const auto& blk = reinterpret_cast<const block_q4_k*>(row)[b / 8];
      const int j = static_cast<int>(b % 8);
      uint8_t sc = 0, m = 0;
      q4_k_scale_min(j, blk.scales, sc, m);
      out.dw = fp16_to_fp32(blk.d) * static_cast<float>(sc);
      out.mw = -fp16_to_fp32(blk.dmin) * static_cast<float>(m);
      const uint8_t* q = blk.qs + 32 * (j / 2);
      for (int l = 0; l < qk32; ++l) out.code[l] = (j % 2 == 0) ? (q[l] & 0xf) : (q[l] >> 4);
      return;
    }
    case tensor_type::q6_k: {
      const auto& blk = reinterpret_cast<const block_q6_k*>(row)[b / 8];
      const int j = static_cast<int>(b % 8);
      const int h = j / 4, qd = j % 4;
      const uint8_t* ql = blk.ql + 64 * h + 32 * (qd & 1);
      const uint8_t* qh = blk.qh + 32 * h;
      const int shift = qd >= 2 ? 4 : 0;
      out.dw = fp16_to_fp32(blk.d);
      out.mw = 0.0f;
      for (int l = 0; l < qk32; ++l) {
        out.code[l] = (((ql[l] >> shift) & 0xf) | (((qh[l] >> (2 * qd)) & 3) << 4)) - 32;
      }
      out.sc[0] = blk.scales[8 * h + 2 * qd];
      out.sc[1] = blk.scales[8 * h + 2 * qd + 1];
      return;
    }
    default:
      return;
  }
}

float load_weight(tensor_type t, const std::byte* row, int64_t l) {
  uint16_t h;
  switch (t) {
    case tensor_type::f16:
      std::memcpy(&h, row + 2 * l, 2);
      return fp16_to_fp32(h);
    case tensor_type::bf16:
      std::memcpy(&h, row + 2 * l, 2);
      return bf16_to_fp32(h);
    default: {
      float f;
      std::memcpy(&f, row + 4 * l, 4);
      return f;
    }
  }
}

}  // namespace

void matmul_rows_scalar(const matmul_job& job, int64_t n0, int64_t n1) {
  const matrix_view& w = job.w;
  if (!uses_q8(w.type)) {
    for (int64_t r = n0; r < n1; ++r) {
      const std::byte* row = w.row(r);
      for (int64_t c = 0; c < job.m; ++c) {
        const float* x = job.x + c * job.ldx;
        float acc = 0.0f;
        for (int64_t l = 0; l < w.cols; ++l) acc += load_weight(w.type, row, l) * x[l];
        job.y[c * job.ldy + r] = acc;
      }
    }
    return;
  }
  const q8_activations& xq = *job.xq;
  block_codes bc;
  for (int64_t r = n0; r < n1; ++r) {
    const std::byte* row = w.row(r);
    for (int64_t c = 0; c < job.m; ++c) {
      const int8_t* q = xq.row_q(c);
      const float* d = xq.row_d(c);
      const float* s = xq.row_s(c);
      float acc = 0.0f, offset = 0.0f;
      for (int64_t b = 0; b < xq.nb; ++b) {
        decode(w.type, row, b, bc);
        int lo = 0, hi = 0;
        for (int l = 0; l < 16; ++l) lo += bc.code[l] * q[b * qk32 + l];
        for (int l = 16; l < qk32; ++l) hi += bc.code[l] * q[b * qk32 + l];
        const int dot = lo * bc.sc[0] + hi * bc.sc[1];
        acc += static_cast<float>(dot) * (bc.dw * d[b]);
        offset += bc.mw * s[b];
      }
      job.y[c * job.ldy + r] = acc + offset;
    }
  }
}

}  // namespace triage::cpu::detail
