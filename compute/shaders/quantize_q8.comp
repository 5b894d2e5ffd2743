// quantize_q8.comp: rows of float activations -> int8 per block of 32, for
// mul_mat_q8.comp, rounded exactly as the CPU engine's q8_0 activations
// (compute/cpu/quantize.h; ggml's Q8_0/Q8_1): amax = max |x| over the block,
// codes round-half-even(x * 127 / amax), d = amax / 127 rounded to F16, and
// s = d * sum(codes) (d unrounded) rounded to F16, the offset term that
// Q4_0/Q4_1/Q4_K weights multiply.
// One invocation per block; dispatch (ceil(k / 32 / size), m, 1).
//
// Output, per row i and block b, at xq[i * k / 32 + b]: 32 codes as 8 words
// of 4 signed bytes (element j in byte j % 4 of word j / 4), then d and s.
// Needs no optional feature (32-bit words only).
#version 450

#include "common.glsl"
#include "q8_block.glsl"

layout(push_constant) uniform push_constants {
  uint k;    // elements per row, a multiple of 32
  uint m;    // rows
  uint ldx;  // floats from one row of x to the next, a multiple of 4
} pc;

layout(std430, binding = 0) readonly buffer buffer_x { vec4 x4[]; };
layout(std430, binding = 1) writeonly buffer buffer_xq { block_q8 xq[]; };

void main() {
  const uint b = gl_GlobalInvocationID.x, i = gl_GlobalInvocationID.y;
  const uint nb = pc.k / 32u;
  if (b >= nb || i >= pc.m) return;
  vec4 xv[8];
  for (uint w = 0; w < 8u; ++w) xv[w] = x4[i * (pc.ldx / 4u) + 8u * b + w];
  vec4 amax4 = abs(xv[0]);
  for (uint w = 1; w < 8u; ++w) amax4 = max(amax4, abs(xv[w]));
  const float amax = max(max(amax4.x, amax4.y), max(amax4.z, amax4.w));
  const float d = amax / 127.0;
  const float inv = amax != 0.0 ? 127.0 / amax : 0.0;
  uint words[8];
  int sum = 0;
  for (uint w = 0; w < 8u; ++w) {
    const ivec4 q = ivec4(roundEven(xv[w] * inv));
    sum += q.x + q.y + q.z + q.w;
    words[w] = (uint(q.x) & 0xffu) | ((uint(q.y) & 0xffu) << 8) | ((uint(q.z) & 0xffu) << 16) |
               ((uint(q.w) & 0xffu) << 24);
  }
  block_q8 out_block;
  out_block.q0 = uvec4(words[0], words[1], words[2], words[3]);
  out_block.q1 = uvec4(words[4], words[5], words[6], words[7]);
  out_block.ds = vec2(unpackHalf2x16(packHalf2x16(vec2(d, d * float(sum)))));
  xq[i * nb + b] = out_block;
}
