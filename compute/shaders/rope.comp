// rope.comp: rotary position embedding. In each head, pairs of elements
// rotate by the angle of the token's position: "normal" pairing (ggml mode
// 0, as Llama/SmolLM2 GGUF files expect) pairs (x[2i], x[2i+1]), "neox"
// (ggml mode 2: Qwen2, Gemma) pairs (x[i], x[i + n_rot/2]), for i < n_rot / 2.
// The host computes cos and sin per (token, pair) with compute/cpu/ops.h's
// rope_table (scaling included), and the rotation rounds as its apply_*
// does, so results match the CPU engine. In place; one invocation per
// (pair, head) of a token; dispatch (ceil(heads * n_rot/2 / size), tokens, 1).
#version 450

#include "common.glsl"

layout(push_constant) uniform push_constants {
  uint n_heads;   // heads per token row
  uint head_dim;  // elements per head
  uint n_rot;     // rotated elements per head (even, <= head_dim)
  uint n_tokens;
  uint ld;        // floats from one token row to the next
  uint neox;      // 1: pairs (x[i], x[i + n_rot/2]); 0: (x[2i], x[2i+1])
} pc;

layout(std430, binding = 0) buffer buffer_x { float x[]; };
// (tokens, n_rot / 2, 2): cos then sin.
layout(std430, binding = 1) readonly buffer buffer_table { float cos_sin[]; };

void main() {
  const uint half_rot = pc.n_rot / 2u;
  const uint g = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
  if (!in_bounds(g, pc.n_heads * half_rot) || t >= pc.n_tokens) return;
  const uint head = g / half_rot, i = g % half_rot;
  const uint base = t * pc.ld + head * pc.head_dim;
  const uint at = pc.neox != 0u ? base + i : base + 2u * i;
  const uint partner = pc.neox != 0u ? at + half_rot : at + 1u;
  const float c = cos_sin[(t * half_rot + i) * 2u], s = cos_sin[(t * half_rot + i) * 2u + 1u];
  const float x0 = x[at], x1 = x[partner];
  // Rounded as the CPU engine (and llama.cpp's CPU build) rounds it: one
  // fused multiply-add per rotated value, the other product rounded first.
  // `precise`: GLSL fuses fma() only for precise results, and forbids
  // contracting the other product into a second fma.
  precise const float y0 = fma(x0, c, -(x1 * s));
  precise const float y1 = fma(x0, s, x1 * c);
  x[at] = y0;
  x[partner] = y1;
}
