// copy.comp: dst[dst_offset + i] = src[src_offset + i] over `count` floats,
// one invocation each. Appends a step's keys and values to a sequence's KV
// cache (compute/vulkan/vk_model.cc) at the rows of their positions.
#version 450

#include "common.glsl"

layout(push_constant) uniform push_constants {
  uint count;       // floats to copy
  uint src_offset;  // first float read in src
  uint dst_offset;  // first float written in dst
} pc;

layout(std430, binding = 0) readonly buffer buffer_src { float src[]; };
layout(std430, binding = 1) writeonly buffer buffer_dst { float dst[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (!in_bounds(i, pc.count)) {
    return;
  }
  dst[pc.dst_offset + i] = src[pc.src_offset + i];
}
