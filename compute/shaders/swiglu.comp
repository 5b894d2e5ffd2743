// swiglu.comp: out[i] = silu(gate[i]) * up[i] = gate / (1 + exp(-gate)) * up,
// one invocation per element; dispatch (ceil(count / size), 1, 1). out may
// be gate's buffer.
//
// Variant GEGLU (Gemma 3): out[i] = gelu(gate[i]) * up[i], GELU's tanh form
// as llama.cpp's CPU backend (and the CPU engine, compute/model/gemma3.cc)
// takes it from a table of F16 values: the input rounded to F16, the result
// rounded to F16; 0 at or below -10, the input itself at or above 10.
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
#ifdef GEGLU
  float y;
  if (g <= -10.0) {
    y = 0.0;
  } else if (g >= 10.0) {
    y = g;
  } else {
    const float x = unpackHalf2x16(packHalf2x16(vec2(g, 0.0))).x;
    precise const float inner = fma(0.044715 * x, x, 1.0);
    const float t = 0.5 * x * (1.0 + tanh(0.79788456080286535588 * x * inner));
    y = unpackHalf2x16(packHalf2x16(vec2(t, 0.0))).x;
  }
  o[i] = y * up[i];
#else
  o[i] = g / (1.0 + exp(-g)) * up[i];
#endif
}
