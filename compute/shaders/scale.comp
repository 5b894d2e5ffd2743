// scale.comp: x[i] *= s over `count` elements, in place, one invocation
// each; dispatch (ceil(count / size), 1, 1). Gemma 3's embedding scale
// (sqrt(dim)) and query scale.
#version 450

#include "common.glsl"

layout(push_constant) uniform push_constants {
  uint count;
  float s;
} pc;

layout(std430, binding = 0) buffer buffer_x { float x[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (!in_bounds(i, pc.count)) return;
  x[i] *= pc.s;
}
