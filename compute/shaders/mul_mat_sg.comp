// mul_mat_sg.comp: y = x W^T as mul_mat.comp, but one subgroup per weight
// row: lane l of the subgroup decodes blocks l, l + subgroup size, ... of the
// row and the TM partial sums are added across the subgroup (subgroupAdd).
// For few activation rows (decoding, logits) this spreads a matrix over
// n_rows subgroups instead of n_rows invocations, which a GPU needs to fill
// its cores; a shared-memory version would need a tree of barriers.
// Requires k % 32 == 0 and ldx % 4 == 0, subgroup arithmetic
// (shader_paths::subgroup), and a workgroup size that is a multiple of the
// subgroup size (the host uses max(64, subgroupSize), powers of two).
// Dispatch: (ceil(n_rows / (size / subgroupSize)), ceil(m / TM), 1); a
// device running smaller subgroups than it reports covers more rows per
// workgroup, which only leaves some subgroups idle.
//
// Variants: one per DATA_A_* weight type (suffix _sg). Specialization
// constants: 0 workgroup size (x), 3 TM (1 to 8).
#version 450

#define USE_SUBGROUP
#include "common.glsl"

layout(constant_id = 3) const uint TM = 8;
const uint MAX_TM = 8;

layout(push_constant) uniform push_constants {
  uint n_rows;     // rows of W in this buffer (outputs)
  uint k;          // elements per row (inputs), a multiple of 32
  uint m;          // activation rows
  uint row_bytes;  // bytes from one row of W to the next
  uint ldx;        // floats from one row of x to the next, a multiple of 4
  uint ldy;        // floats from one row of y to the next
  uint y_col0;     // column of y that W's row 0 writes
} pc;

layout(std430, binding = 0) readonly buffer buffer_w { uint w_data[]; };
layout(std430, binding = 1) readonly buffer buffer_x { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer buffer_y { float y[]; };

#include "dequant.glsl"

void main() {
  const uint n = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID;
  if (n >= pc.n_rows) return;  // the whole subgroup: n is uniform in it
  const uint m0 = gl_WorkGroupID.y * TM;
  uint x_row[MAX_TM];
  for (uint t = 0; t < TM; ++t) x_row[t] = min(m0 + t, pc.m - 1u) * (pc.ldx / 4u);
  float acc[MAX_TM];
  for (uint t = 0; t < TM; ++t) acc[t] = 0.0;

  const uint row = n * pc.row_bytes;
  float v[32];
  for (uint b = gl_SubgroupInvocationID; b < pc.k / 32u; b += gl_SubgroupSize) {
    dequant_block(row, b, v);
    for (uint t = 0; t < TM; ++t) {
      float sum = 0.0;
      for (uint i = 0; i < 8u; ++i) {
        sum += dot(vec4(v[4u * i], v[4u * i + 1u], v[4u * i + 2u], v[4u * i + 3u]),
                   x4[x_row[t] + 8u * b + i]);
      }
      acc[t] += sum;
    }
  }
  for (uint t = 0; t < TM; ++t) acc[t] = subgroupAdd(acc[t]);
  if (subgroupElect()) {
    for (uint t = 0; t < TM; ++t) {
      if (m0 + t < pc.m) y[(m0 + t) * pc.ldy + pc.y_col0 + n] = acc[t];
    }
  }
}
