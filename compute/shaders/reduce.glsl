// reduce.glsl: workgroup-wide sum and max through shared memory, for 1-D
// workgroups of WG invocations (any size). Included, never compiled alone.
// The including shader declares `layout(constant_id = 0) const uint WG` and
// calls these from every invocation (they contain barriers).

// With USE_SUBGROUP (common.glsl enables the extensions) each subgroup
// reduces in registers (subgroupAdd / subgroupMax) and only one partial per
// subgroup goes through shared memory: one barrier pair instead of log2(WG)
// steps. Works for any subgroup size, partial subgroups included.

shared float reduce_scratch[WG];

// a + b, or max(a, b) where take_max (a constant at every call site).
float reduce_combine(float a, float b, bool take_max) {
  return take_max ? max(a, b) : a + b;
}

#if defined(USE_SUBGROUP)
float workgroup_reduce(float v, bool take_max) {
  if (take_max) {
    v = subgroupMax(v);
  } else {
    v = subgroupAdd(v);
  }
  if (gl_NumSubgroups == 1u) return v;
  if (subgroupElect()) reduce_scratch[gl_SubgroupID] = v;
  barrier();
  float total = reduce_scratch[0];
  for (uint i = 1; i < gl_NumSubgroups; ++i) {
    total = reduce_combine(total, reduce_scratch[i], take_max);
  }
  barrier();  // the scratch is free again for the next call
  return total;
}
#else
float workgroup_reduce(float v, bool take_max) {
  const uint tid = gl_LocalInvocationID.x;
  reduce_scratch[tid] = v;
  barrier();
  // Halve the active range each step; the odd element folds into the first.
  for (uint n = WG; n > 1u;) {
    const uint half_n = (n + 1u) / 2u;
    if (tid < n / 2u) {
      reduce_scratch[tid] =
          reduce_combine(reduce_scratch[tid], reduce_scratch[tid + half_n], take_max);
    }
    barrier();
    n = half_n;
  }
  const float total = reduce_scratch[0];
  barrier();  // the scratch is free again for the next call
  return total;
}
#endif  // USE_SUBGROUP

float workgroup_sum(float v) { return workgroup_reduce(v, false); }

float workgroup_max(float v) { return workgroup_reduce(v, true); }
