// rms_norm.comp: y = x / sqrt(mean(x^2) + eps) * weight, row by row. One
// workgroup per row; dispatch (rows, 1, 1). y may be x's buffer.
#version 450

#include "common.glsl"

layout(constant_id = 0) const uint WG = 64;

layout(push_constant) uniform push_constants {
  uint cols;  // elements per row
  float eps;
} pc;

layout(std430, binding = 0) readonly buffer buffer_x { float x[]; };
layout(std430, binding = 1) readonly buffer buffer_w { float weight[]; };
layout(std430, binding = 2) writeonly buffer buffer_y { float y[]; };

#include "reduce.glsl"

void main() {
  const uint row = gl_WorkGroupID.x * pc.cols;
  float sum = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < pc.cols; i += WG) sum += x[row + i] * x[row + i];
  sum = workgroup_sum(sum);
  const float scale = 1.0 / sqrt(sum / float(pc.cols) + pc.eps);
  for (uint i = gl_LocalInvocationID.x; i < pc.cols; i += WG) {
    y[row + i] = (x[row + i] * scale) * weight[i];
  }
}
