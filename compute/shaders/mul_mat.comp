// mul_mat.comp: y = x W^T for a weight matrix W in a ggml type (dequant.glsl)
// and float activations x: y[i][y_col0 + j] = sum_l x[i][l] * W[j][l].
//
// One invocation per weight row and group of TM activation rows: it decodes
// W's row a block of 32 at a time (dequant_block: few, wide loads) and
// multiplies the block into TM accumulators, reading x as vec4. No shared
// memory and no barriers: what runs fastest on lavapipe, and a portable
// baseline elsewhere. Requires k % 32 == 0 and ldx % 4 == 0 (mul_mm.comp
// handles the rest).
// Dispatch: (ceil(n_rows / size), ceil(m / TM), 1).
//
// Variants: one per DATA_A_* weight type. Specialization constants: 0
// workgroup size (x), 3 TM (1 to 8), 4 Q8_X (0 or 1): quantize each block of
// 32 activations to int8 with an F16-precision scale before multiplying, as
// the CPU engine (compute/cpu/quantize.h) and ggml's CPU backend do for
// quantized weights, so that both engines round alike.
// W may be a slice of rows of a larger matrix (split to fit
// maxStorageBufferRange): y_col0 says where its outputs go in each y row.
#version 450
#if defined(F16_STORAGE)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

#include "common.glsl"

layout(constant_id = 3) const uint TM = 8;  // activation rows per invocation
layout(constant_id = 4) const uint Q8_X = 0;
const uint MAX_TM = 8;

layout(push_constant) uniform push_constants {
  uint n_rows;     // rows of W in this buffer (outputs)
  uint k;          // elements per row (inputs), a multiple of 32
  uint m;          // activation rows
  uint row_bytes;  // bytes from one row of W to the next
  uint ldx;        // floats from one row of x to the next, a multiple of 4
  uint ldy;        // floats from one row of y to the next
  uint y_col0;     // column of y that W's row 0 writes
} pc;

layout(std430, binding = 1) readonly buffer buffer_x { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer buffer_y { float y[]; };

#if defined(F16_STORAGE)
// Variant mul_mat_f16_storage (shader_paths::float16): F16 weights loaded as
// f16vec4 through 16-bit storage and widened, instead of two halves unpacked
// from each 32-bit word. Same values, so the same results as mul_mat_f16.
// Rows are 2k bytes with k % 32 == 0, so every row starts on 8 bytes.
layout(std430, binding = 0) readonly buffer buffer_w { f16vec4 w16[]; };

void dequant_block(uint row, uint b, inout float v[32]) {
  const uint base = row / 8u + 8u * b;
  for (uint i = 0; i < 8u; ++i) {
    const vec4 q = vec4(w16[base + i]);
    v[4u * i] = q.x;
    v[4u * i + 1u] = q.y;
    v[4u * i + 2u] = q.z;
    v[4u * i + 3u] = q.w;
  }
}
#else
layout(std430, binding = 0) readonly buffer buffer_w { uint w_data[]; };

#include "dequant.glsl"
#endif

void main() {
  const uint n = gl_GlobalInvocationID.x;
  if (n >= pc.n_rows) return;
  const uint m0 = gl_GlobalInvocationID.y * TM;
  // Rows past m repeat the last one (valid memory); their sums are dropped.
  uint x_row[MAX_TM];
  for (uint t = 0; t < TM; ++t) x_row[t] = min(m0 + t, pc.m - 1u) * (pc.ldx / 4u);
  float acc[MAX_TM];
  for (uint t = 0; t < TM; ++t) acc[t] = 0.0;

  const uint row = n * pc.row_bytes;
  float v[32];
  for (uint b = 0; b < pc.k / 32u; ++b) {
    dequant_block(row, b, v);
    for (uint t = 0; t < TM; ++t) {
      vec4 xv[8];
      for (uint i = 0; i < 8u; ++i) xv[i] = x4[x_row[t] + 8u * b + i];
      if (Q8_X != 0u) {
        vec4 amax4 = abs(xv[0]);
        for (uint i = 1; i < 8u; ++i) amax4 = max(amax4, abs(xv[i]));
        const float amax = max(max(amax4.x, amax4.y), max(amax4.z, amax4.w));
        const float inv = amax != 0.0 ? 127.0 / amax : 0.0;
        const float d = unpackHalf2x16(packHalf2x16(vec2(amax / 127.0, 0.0))).x;
        for (uint i = 0; i < 8u; ++i) xv[i] = roundEven(xv[i] * inv) * d;
      }
      float sum = 0.0;
      for (uint i = 0; i < 8u; ++i) {
        sum += dot(vec4(v[4u * i], v[4u * i + 1u], v[4u * i + 2u], v[4u * i + 3u]), xv[i]);
      }
      acc[t] += sum;
    }
  }
  for (uint t = 0; t < TM; ++t) {
    if (m0 + t < pc.m) y[(m0 + t) * pc.ldy + pc.y_col0 + n] = acc[t];
  }
}
