// pool.comp: per sequence of a ragged batch, the last row and the mean of
// its rows of h. Sequence s is rows offsets[s] .. offsets[s+1]-1. One
// invocation per (element, sequence); dispatch (ceil(cols / size), n_seqs, 1).
#version 450

#include "common.glsl"

layout(push_constant) uniform push_constants {
  uint cols;  // elements per row
  uint n_seqs;
} pc;

layout(std430, binding = 0) readonly buffer buffer_h { float h[]; };
layout(std430, binding = 1) readonly buffer buffer_offsets { int offsets[]; };
layout(std430, binding = 2) writeonly buffer buffer_last { float last[]; };
layout(std430, binding = 3) writeonly buffer buffer_mean { float mean[]; };

void main() {
  const uint e = gl_GlobalInvocationID.x, s = gl_GlobalInvocationID.y;
  if (!in_bounds(e, pc.cols) || s >= pc.n_seqs) return;
  const uint begin = uint(offsets[s]), end = uint(offsets[s + 1u]);
  float sum = 0.0;
  for (uint r = begin; r < end; ++r) sum += h[r * pc.cols + e];
  mean[s * pc.cols + e] = sum * (1.0 / float(end - begin));
  last[s * pc.cols + e] = h[(end - 1u) * pc.cols + e];
}
