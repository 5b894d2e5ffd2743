// swiglu.comp: out[i] = silu(gate[i]) * up[i] = gate / (1 + exp(-gate)) * up,
// one invocation per element; dispatch (ceil(count / size), 1, 1). out may
// be gate's buffer.
#version 450

#include "common.glsl"

layout(push_constant) uniform push_constants {
  uint count;
} pc;

layout(std430, binding = 0) readonly buffer buffer_gate { float gate[]; };
layout(std430, binding = 1) readonly buffer buffer_up { float up[]; };
layout(std430, binding = 2) writeonly buffer buffer_out { float o[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (!in_bounds(i, pc.count)) return;
  const float g = gate[i];
  o[i] = g / (1.0 + exp(-g)) * up[i];
}
