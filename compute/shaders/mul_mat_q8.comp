// mul_mat_q8.comp: y = x W^T for a quantized W with x already quantized to
// int8 per block of 32 by quantize_q8.comp, in integer arithmetic, the way
// the CPU engine's integer kernels compute it (codes.glsl): per block,
// float(integer dot of the codes, per half times the sub-block scales) *
// (dw * d_x), plus mw * s_x summed apart.
//
// With DOT_PRODUCT the 4-byte dots are OpSDot on packed int8
// (SPV_KHR_integer_dot_product; shader_paths::integer_dot, the device must
// have shaderIntegerDotProduct). glslang 11 (Debian 12) has no
// GL_EXT_integer_dot_product, so the instruction is declared through
// GL_EXT_spirv_intrinsics. Without it the same dot is 4 multiply-adds on
// 32-bit integers (bitfieldExtract), which any device runs: the layout and
// rounding are then testable where OpSDot is not available.
//
// One invocation per weight row and group of TM activation rows, as
// mul_mat.comp. Requires k % 32 == 0 (k % 256 for the K-quants).
// Dispatch: (ceil(n_rows / size), ceil(m / TM), 1).
// Variants: mul_mat_q8dot_<type>, mul_mat_q8int_<type> for Q8_0, Q4_0, Q4_1,
// Q4_K and Q6_K. Specialization constants: 0 workgroup size (x), 3 TM.
#version 450

#if defined(DOT_PRODUCT)
#extension GL_EXT_spirv_intrinsics : require
// OpSDotKHR (4450) with PackedVectorFormat4x8Bit: capabilities DotProductKHR
// (6019) and DotProductInput4x8BitPackedKHR (6018).
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018],
                  id = 4450)
int sdot_packed(uint a, uint b, spirv_literal int packed_format);
int sdot4(uint a, uint b) { return sdot_packed(a, b, 0); }
#else
int sdot4(uint a, uint b) {
  const ivec4 x = ivec4(bitfieldExtract(int(a), 0, 8), bitfieldExtract(int(a), 8, 8),
                        bitfieldExtract(int(a), 16, 8), bitfieldExtract(int(a), 24, 8));
  const ivec4 y = ivec4(bitfieldExtract(int(b), 0, 8), bitfieldExtract(int(b), 8, 8),
                        bitfieldExtract(int(b), 16, 8), bitfieldExtract(int(b), 24, 8));
  return x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
}
#endif

#include "common.glsl"
#include "q8_block.glsl"

layout(constant_id = 3) const uint TM = 8;  // activation rows per invocation
const uint MAX_TM = 8;

layout(push_constant) uniform push_constants {
  uint n_rows;     // rows of W in this buffer (outputs)
  uint k;          // elements per row (inputs), a multiple of 32
  uint m;          // activation rows
  uint row_bytes;  // bytes from one row of W to the next
  uint ldy;        // floats from one row of y to the next
  uint y_col0;     // column of y that W's row 0 writes
} pc;

layout(std430, binding = 0) readonly buffer buffer_w { uint w_data[]; };
layout(std430, binding = 1) readonly buffer buffer_xq { block_q8 xq[]; };
layout(std430, binding = 2) writeonly buffer buffer_y { float y[]; };

#include "dequant.glsl"
#include "codes.glsl"

void main() {
  const uint n = gl_GlobalInvocationID.x;
  if (n >= pc.n_rows) return;
  const uint m0 = gl_GlobalInvocationID.y * TM;
  const uint nb = pc.k / 32u;
  // Rows past m repeat the last one (valid memory); their sums are dropped.
  uint x_row[MAX_TM];
  for (uint t = 0; t < TM; ++t) x_row[t] = min(m0 + t, pc.m - 1u) * nb;
  float acc[MAX_TM], offset[MAX_TM];
  for (uint t = 0; t < TM; ++t) {
    acc[t] = 0.0;
    offset[t] = 0.0;
  }
  const uint row = n * pc.row_bytes;
  for (uint b = 0; b < nb; ++b) {
    const block_codes wc = decode_codes(row, b);
    for (uint t = 0; t < TM; ++t) {
      const block_q8 xb = xq[x_row[t] + b];
      const int lo = sdot4(wc.c[0], xb.q0.x) + sdot4(wc.c[1], xb.q0.y) +
                     sdot4(wc.c[2], xb.q0.z) + sdot4(wc.c[3], xb.q0.w);
      const int hi = sdot4(wc.c[4], xb.q1.x) + sdot4(wc.c[5], xb.q1.y) +
                     sdot4(wc.c[6], xb.q1.z) + sdot4(wc.c[7], xb.q1.w);
      acc[t] += float(lo * wc.sc0 + hi * wc.sc1) * (wc.dw * xb.ds.x);
      offset[t] += wc.mw * xb.ds.y;
    }
  }
  for (uint t = 0; t < TM; ++t) {
    if (m0 + t < pc.m) y[(m0 + t) * pc.ldy + pc.y_col0 + n] = acc[t] + offset[t];
  }
}
