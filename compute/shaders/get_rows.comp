// get_rows.comp: y[t][e] = W[ids[t]][e], the rows of a weight matrix in a
// ggml type (dequant.glsl) picked by token id: the embedding lookup.
// One invocation per element; dispatch (ceil(cols / size), n_ids, 1).
//
// W may be one slice of rows [row0, row0 + rows) of a larger matrix (split
// to fit maxStorageBufferRange); ids outside it are left for the dispatch
// of the slice that has them.
//
// Variants: one per DATA_A_* weight type.
#version 450

#include "common.glsl"

layout(push_constant) uniform push_constants {
  uint cols;       // elements per row
  uint n_ids;      // rows to gather
  uint row_bytes;  // bytes from one row of W to the next
  uint row0;       // the matrix row that this buffer's row 0 is
  uint rows;       // rows in this buffer
} pc;

layout(std430, binding = 0) readonly buffer buffer_w { uint w_data[]; };
layout(std430, binding = 1) readonly buffer buffer_ids { int ids[]; };
layout(std430, binding = 2) writeonly buffer buffer_y { float y[]; };

#include "dequant.glsl"

void main() {
  const uint e = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
  if (!in_bounds(e, pc.cols) || t >= pc.n_ids) return;
  const uint id = uint(ids[t]);
  if (id < pc.row0 || id - pc.row0 >= pc.rows) return;
  y[t * pc.cols + e] = dequant((id - pc.row0) * pc.row_bytes, e);
}
