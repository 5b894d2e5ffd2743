// softmax.comp: in place, row by row: x = exp(x - max) / sum(exp(x - max)).
// One workgroup per row; dispatch (rows, 1, 1).
#version 450

#include "common.glsl"

layout(constant_id = 0) const uint WG = 64;

layout(push_constant) uniform push_constants {
  uint cols;  // elements per row
} pc;

layout(std430, binding = 0) buffer buffer_x { float x[]; };

#include "reduce.glsl"

void main() {
  const uint row = gl_WorkGroupID.x * pc.cols;
  float m = -1.0 / 0.0;
  for (uint i = gl_LocalInvocationID.x; i < pc.cols; i += WG) m = max(m, x[row + i]);
  m = workgroup_max(m);
  float sum = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < pc.cols; i += WG) {
    const float e = exp(x[row + i] - m);
    x[row + i] = e;
    sum += e;
  }
  const float inv = 1.0 / workgroup_sum(sum);
  for (uint i = gl_LocalInvocationID.x; i < pc.cols; i += WG) x[row + i] *= inv;
}
