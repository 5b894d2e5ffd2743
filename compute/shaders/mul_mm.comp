// mul_mm.comp: y = x W^T for a weight matrix W in a ggml type (dequant.glsl)
// and float activations x: y[i][y_col0 + j] = sum_l x[i][l] * W[j][l].
//
// One workgroup computes a tile of BN weight rows x BM activation rows,
// stepping through k in slices of 32: the workgroup dequantizes the BN x 32
// slice of W and loads the BM x 32 slice of x into shared memory once, then
// each invocation accumulates (BN * BM) / workgroup size outputs (at most
// 16). Partial tiles (n, m, k not multiples of the tile) read zeros.
// Dispatch: (ceil(n_rows / BN), ceil(m / BM), 1).
//
// Variants (compute/shaders/CMakeLists.txt): one per DATA_A_* weight type.
// Specialization constants: 0 workgroup size (x), 3 BN, 4 BM; the host keeps
// (BN * BM) / size whole and at most 16.
// W may be a slice of rows of a larger matrix (split to fit
// maxStorageBufferRange): y_col0 says where its outputs go in each y row.
#version 450

#include "common.glsl"

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 3) const uint BN = 32;  // weight rows per workgroup
layout(constant_id = 4) const uint BM = 32;  // activation rows per workgroup
const uint BK = 32;
const uint MAX_ACC = 16;

layout(push_constant) uniform push_constants {
  uint n_rows;     // rows of W in this buffer (outputs)
  uint k;          // elements per row (inputs)
  uint m;          // activation rows
  uint row_bytes;  // bytes from one row of W to the next
  uint ldx;        // floats from one row of x to the next
  uint ldy;        // floats from one row of y to the next
  uint y_col0;     // column of y that W's row 0 writes
} pc;

layout(std430, binding = 0) readonly buffer buffer_w { uint w_data[]; };
layout(std430, binding = 1) readonly buffer buffer_x { float x[]; };
layout(std430, binding = 2) writeonly buffer buffer_y { float y[]; };

#include "dequant.glsl"

shared float w_tile[BN * BK];
shared float x_tile[BM * BK];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint n0 = gl_WorkGroupID.x * BN;
  const uint m0 = gl_WorkGroupID.y * BM;
  const uint acc_count = (BN * BM) / WG;

  float acc[MAX_ACC];
  for (uint a = 0; a < MAX_ACC; ++a) acc[a] = 0.0;

  for (uint k0 = 0; k0 < pc.k; k0 += BK) {
    for (uint e = tid; e < BN * BK; e += WG) {
      const uint n = n0 + e / BK, kk = k0 + e % BK;
      w_tile[e] = (n < pc.n_rows && kk < pc.k) ? dequant(n * pc.row_bytes, kk) : 0.0;
    }
    for (uint e = tid; e < BM * BK; e += WG) {
      const uint i = m0 + e / BK, kk = k0 + e % BK;
      x_tile[e] = (i < pc.m && kk < pc.k) ? x[i * pc.ldx + kk] : 0.0;
    }
    barrier();
    for (uint a = 0; a < acc_count; ++a) {
      const uint o = tid + a * WG;
      const uint wr = (o % BN) * BK, xr = (o / BN) * BK;
      float sum = 0.0;
      for (uint c = 0; c < BK; ++c) sum += w_tile[wr + c] * x_tile[xr + c];
      acc[a] += sum;
    }
    barrier();
  }

  for (uint a = 0; a < acc_count; ++a) {
    const uint o = tid + a * WG;
    const uint n = n0 + o % BN, i = m0 + o / BN;
    if (n < pc.n_rows && i < pc.m) y[i * pc.ldy + pc.y_col0 + n] = acc[a];
  }
}
