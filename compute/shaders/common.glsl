// common.glsl: declarations shared by every compute shader. Included, never
// compiled on its own (only *.comp files are entry points).
//
// Conventions:
// - Workgroup size comes from specialization constants 0, 1, 2 (x, y, z), set
//   by the runtime when it builds the pipeline, so one SPIR-V module fits any
//   device. Constant ids from 3 up are free for the shader's own use.
// - Element counts arrive in push constants; buffers are rounded up by the
//   host, so every shader bounds-checks its index.

// Subgroup variants (shader_paths::subgroup) define USE_SUBGROUP; extensions
// must come before any declaration, hence here.
#if defined(USE_SUBGROUP)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

// True when invocation `i` has an element to work on, for 1-D kernels whose
// last workgroup is only partly used (count not a multiple of its size).
bool in_bounds(uint i, uint count) {
  return i < count;
}
