// attention.comp: causal grouped-query attention over a ragged batch (several
// sequences one after another, each attending only to its own earlier
// tokens). Token t of a sequence starting at row first[t] attends to rows
// first[t] .. t: out = softmax(q k^T * scale) v, per head; query head h
// reads key/value head h / (n_heads / n_kv_heads).
//
// One workgroup per (head, token); dispatch (n_heads, n_tokens, 1). Keys go
// in chunks of CHUNK: scores into shared memory, then an online softmax
// (running max and sum, rescaled per chunk) so any length fits. Invocation i
// owns output elements i, i + size, ... (head_dim <= 4 * workgroup size).
//
// With a KV cache (decoding), q and out hold the new tokens only and k, v
// every cached position: query row t is the token at key row t + kv_pos0,
// so it attends to rows first[t] .. t + kv_pos0 (kv_pos0 = 0: prefill).
//
// A sliding window (Gemma 3's local layers; window = 0: none) keeps the last
// `window` of those rows, the query's own included.
//
// Specialization constant 3, ROUND_F16 (0 or 1): round q, k, v and the
// attention weights to F16 precision as they are read, as the CPU engine's
// f16_attention and llama.cpp's F16 KV cache do (computing stays f32).
#version 450

#include "common.glsl"

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 3) const uint ROUND_F16 = 0;
const uint CHUNK = 256;
const uint MAX_HEAD_DIM = 256;

layout(push_constant) uniform push_constants {
  uint n_heads;
  uint n_kv_heads;
  uint head_dim;
  uint ldq;  // floats per row of q and out (n_heads * head_dim)
  uint ldkv;  // floats per row of k and v (n_kv_heads * head_dim)
  float scale;
  uint kv_pos0;  // key row of query row 0 (the positions already cached)
  uint window;   // most keys per query, its own included (0: no limit)
} pc;

layout(std430, binding = 0) readonly buffer buffer_q { float q[]; };
layout(std430, binding = 1) readonly buffer buffer_k { float k[]; };
layout(std430, binding = 2) readonly buffer buffer_v { float v[]; };
layout(std430, binding = 3) readonly buffer buffer_first { int first_row[]; };
layout(std430, binding = 4) writeonly buffer buffer_out { float o[]; };

#include "reduce.glsl"

float maybe_f16(float x) {
  return ROUND_F16 != 0u ? unpackHalf2x16(packHalf2x16(vec2(x, 0.0))).x : x;
}

shared float q_head[MAX_HEAD_DIM];
shared float p[CHUNK];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
  const uint hd = pc.head_dim;
  const uint kv_off = (h / (pc.n_heads / pc.n_kv_heads)) * hd;
  for (uint d = tid; d < hd; d += WG) q_head[d] = maybe_f16(q[t * pc.ldq + h * hd + d]);
  barrier();

  const uint self = t + pc.kv_pos0;  // the query's own key row
  uint first = uint(first_row[t]);
  if (pc.window != 0u && self + 1u > pc.window) first = max(first, self + 1u - pc.window);
  const uint count = self - first + 1u;
  float run_max = -1.0 / 0.0;  // -inf
  float run_sum = 0.0;
  float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);

  for (uint c0 = 0; c0 < count; c0 += CHUNK) {
    const uint cn = min(CHUNK, count - c0);
    float local_max = -1.0 / 0.0;
    for (uint j = tid; j < cn; j += WG) {
      const uint row = (first + c0 + j) * pc.ldkv + kv_off;
      float s = 0.0;
      for (uint d = 0; d < hd; ++d) s += q_head[d] * maybe_f16(k[row + d]);
      s *= pc.scale;
      p[j] = s;
      local_max = max(local_max, s);
    }
    const float new_max = max(run_max, workgroup_max(local_max));
    float local_sum = 0.0;
    for (uint j = tid; j < cn; j += WG) {
      const float e = exp(p[j] - new_max);
      p[j] = maybe_f16(e);
      local_sum += e;
    }
    const float chunk_sum = workgroup_sum(local_sum);  // its barriers publish p[]
    const float correction = exp(run_max - new_max);   // 0 on the first chunk
    run_sum = run_sum * correction + chunk_sum;
    for (uint a = 0; a < 4u; ++a) {
      const uint d = tid + a * WG;
      if (d >= hd) break;
      float sum = 0.0;
      for (uint j = 0; j < cn; ++j) {
        sum += p[j] * maybe_f16(v[(first + c0 + j) * pc.ldkv + kv_off + d]);
      }
      acc[a] = acc[a] * correction + sum;
    }
    run_max = new_max;
    barrier();  // everyone is done with p[] before the next chunk overwrites it
  }

  for (uint a = 0; a < 4u; ++a) {
    const uint d = tid + a * WG;
    if (d >= hd) break;
    o[t * pc.ldq + h * hd + d] = acc[a] / run_sum;
  }
}
