// add.comp: c[i] = a[i] + b[i] over `count` elements, one invocation each.
//
// Variants (compute/shaders/CMakeLists.txt): TYPE is the element type,
// float by default. With BROADCAST, b holds `b_count` elements repeated:
// c[i] = a[i] + b[i % b_count] (a bias row added to every row).
#version 450

#include "common.glsl"

#ifndef TYPE
#define TYPE float
#endif

layout(push_constant) uniform push_constants {
  uint count;  // elements in a, b and c
#ifdef BROADCAST
  uint b_count;  // elements in b
#endif
} pc;

layout(std430, binding = 0) readonly buffer buffer_a { TYPE a[]; };
layout(std430, binding = 1) readonly buffer buffer_b { TYPE b[]; };
layout(std430, binding = 2) writeonly buffer buffer_c { TYPE c[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (!in_bounds(i, pc.count)) {
    return;
  }
#ifdef BROADCAST
  c[i] = a[i] + b[i % pc.b_count];
#else
  c[i] = a[i] + b[i];
#endif
}
