// rope.comp: rotary position embedding, "normal" pairing (ggml mode 0, as
// Llama/SmolLM2 GGUF files expect): in each head, pairs (x[2i], x[2i+1])
// for i < n_rot / 2 rotate by the angle of the token's position. The host
// computes cos and sin per (token, pair) as compute/cpu/ops.h's rope_table
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
} pc;

layout(std430, binding = 0) buffer buffer_x { float x[]; };
// (tokens, n_rot / 2, 2): cos then sin.
layout(std430, binding = 1) readonly buffer buffer_table { float cos_sin[]; };

void main() {
  const uint half_rot = pc.n_rot / 2u;
  const uint g = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
  if (!in_bounds(g, pc.n_heads * half_rot) || t >= pc.n_tokens) return;
  const uint head = g / half_rot, i = g % half_rot;
  const uint at = t * pc.ld + head * pc.head_dim + 2u * i;
  const float c = cos_sin[(t * half_rot + i) * 2u], s = cos_sin[(t * half_rot + i) * 2u + 1u];
  const float x0 = x[at], x1 = x[at + 1u];
  x[at] = x0 * c - x1 * s;
  x[at + 1u] = x0 * s + x1 * c;
}
