// q8_block.glsl: one block of 32 activations quantized to int8 by
// quantize_q8.comp and read by mul_mat_q8.comp. Included, never compiled
// alone. 48 bytes in std430 (the struct is padded to 16).
struct block_q8 {
  uvec4 q0;  // codes 0..15, 4 signed bytes per word, element j in byte j % 4
  uvec4 q1;  // codes 16..31
  vec2 ds;   // d (F16-rounded scale) and s (d * sum of codes, F16-rounded)
};
