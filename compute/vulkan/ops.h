// ops.h: the forward-pass operations on a Vulkan context, one embedded shader
// each (compute/shaders), recorded into the context's current recording so
// that a whole forward pass is one command buffer and one wait. Weight
// matrices are uploaded once (weight_matrix) in their GGUF type and
// dequantized inside the shaders.
//
//   auto w = triage::vulkan::upload_matrix(gpu, cpu_view);   // result<weight_matrix>
//   triage::vulkan::ops k(gpu);
//   gpu.begin();
//   k.rms_norm(x, norm, xb, n_tokens, dim, 1e-5f);
//   k.mul_mat(w.value(), xb, n_tokens, q);        // q = xb W^T
//   gpu.submit();
//
// Buffer contents are float32 (ids and offsets int32), row-major. Every op
// checks that its buffers are large enough for the sizes given and returns
// invalid_argument otherwise (nothing is recorded then).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "compute/cpu/matmul.h"
#include "compute/gguf/types.h"
#include "compute/vulkan/context.h"

namespace triage::vulkan {

// A weight matrix on the device, in its GGUF type: rows (outputs) x cols
// (inputs). Split by rows into several buffers when it is larger than one
// storage buffer binding may span.
struct weight_matrix {
  struct slice {
    buffer data;          // rows [row0, row0 + rows)
    uint32_t row0 = 0;
    uint32_t rows = 0;
  };
  gguf::tensor_type type = gguf::tensor_type::f32;
  uint32_t rows = 0;
  uint32_t cols = 0;
  uint32_t row_bytes = 0;
  std::vector<slice> slices;

  uint64_t bytes() const { return uint64_t{rows} * row_bytes; }
};

// Whether the shaders read weights of this type (F32, F16, BF16, Q8_0, Q4_0,
// Q4_1, Q4_K, Q6_K: what the CPU engine reads).
bool can_upload(gguf::tensor_type type);

// Copies `w` into device-local buffers (memory_use::device) of at most
// `max_slice_bytes` each (0: the device's maxStorageBufferRange). Errors: invalid_argument for a type the
// shaders do not read or a row larger than a slice; out_of_device_memory.
result<weight_matrix> upload_matrix(context& ctx, const cpu::matrix_view& w,
                                    uint64_t max_slice_bytes = 0);

// A device-local float buffer holding `values` (1-D weights such as norm scales).
result<buffer> upload_floats(context& ctx, std::span<const float> values);

// cos and sin per (position, pair) for rope(): (positions, n_rot / 2, 2),
// the angles of compute/cpu/ops.h's rope_table (ggml's theta_i = pos *
// base^(-2i / n_rot), then freq_scale * theta_i / freq_factors[i]: linear
// scaling and rope_freqs.weight divisors), bit for bit: the table is taken
// from rope_table itself.
std::vector<float> rope_cos_sin(std::span<const int32_t> positions, int n_rot, float freq_base,
                                float freq_scale = 1.0f,
                                std::span<const float> freq_factors = {});

// Which shader mul_mat() runs: `rows` (mul_mat.comp: an invocation per
// weight row, whole blocks, no shared memory; needs k % 32 == 0 and ldx % 4
// == 0) or `tiles` (mul_mm.comp: shared-memory tiles; any k). `automatic`
// takes rows where it can.
enum class matmul_kernel { automatic, rows, tiles };

// How mul_mat(..., q8_activations = true) computes with int8 activations:
// `float_rounding` (portable: mul_mat.comp rounds x to int8 values in float
// and multiplies in float), `integer` (quantize_q8.comp then mul_mat_q8.comp
// in 32-bit integer arithmetic, no feature needed), `integer_dot` (the same
// with OpSDot; needs shader_paths::integer_dot). `automatic`: integer_dot
// where the paths allow it, else float_rounding. All round x as the CPU
// engine does (per block of 32, cpu::q8_format::q8_0).
enum class q8_kernel { automatic, float_rounding, integer, integer_dot };

class ops {
 public:
  // Uses the shader paths the context enabled (ctx.device().paths).
  explicit ops(context& ctx) : ctx_(&ctx), paths_(ctx.device().paths) {}

  context& ctx() { return *ctx_; }
  // Tests pin the kernel to compare both with the CPU. Default: automatic.
  void set_matmul_kernel(matmul_kernel k) { matmul_kernel_ = k; }

  // The optional shader paths the ops choose from (see shader_paths):
  //  - subgroup: rms_norm and softmax reduce with subgroupAdd/Max
  //    (*_sg variants); mul_mat with m <= 8 runs one subgroup per weight
  //    row (mul_mat_sg.comp), unless q8_activations;
  //  - integer_dot: mul_mat with q8_activations uses OpSDot (q8_kernel);
  //  - float16: F16 weights are loaded through 16-bit storage.
  // Everything else, and all of it when none is on, is the portable path.
  const shader_paths& paths() const { return paths_; }
  // Turns paths off (or back on) for tests and benchmarks; only paths the
  // context enabled can be on, so the result is `wanted` and
  // ctx.device().paths. Returns the paths now in use.
  shader_paths set_paths(const shader_paths& wanted);
  // Pins the int8-activation kernel. Default: automatic. mul_mat returns
  // missing_feature for integer_dot when the paths do not allow it.
  void set_q8_kernel(q8_kernel k) { q8_kernel_ = k; }
  // The name of the shader the last recorded op ran (the last of several
  // dispatches), e.g. "mul_mat_q8dot_q4_1"; for tests and benchmarks.
  const std::string& last_shader() const { return last_shader_; }

  // y (m, w.rows) = x (m, w.cols) W^T; rows of x ldx floats apart (0: w.cols),
  // rows of y ldy floats apart (0: w.rows). q8_activations: for quantized W,
  // round x to int8 per block of 32 first, as the CPU engine does (row
  // kernel only; the tiled kernel ignores it).
  result<void> mul_mat(const weight_matrix& w, const buffer& x, uint32_t m, buffer& y,
                       uint32_t ldx = 0, uint32_t ldy = 0, bool q8_activations = false);
  // y (n, w.cols) = rows ids[0 .. n) of W (the embedding lookup); ids must
  // be valid row numbers (the caller checks them). One dispatch per slice.
  result<void> get_rows(const weight_matrix& w, const buffer& ids, uint32_t n, buffer& y);
  // y = x / sqrt(mean(x^2) + eps) * weight, per row of `cols`; y may be x.
  result<void> rms_norm(const buffer& x, const buffer& weight, buffer& y, uint32_t rows,
                        uint32_t cols, float eps);
  // Rotates the first n_rot elements of each of n_heads heads of head_dim in
  // each of n_tokens rows of x (ld floats apart), in place; cos_sin from
  // rope_cos_sin() of the tokens' positions. Pairs (x[2i], x[2i+1]) ("normal",
  // llama), or (x[i], x[i + n_rot/2]) with neox (qwen2, gemma3), as
  // cpu::rope_table's apply_normal / apply_neox.
  result<void> rope(buffer& x, const buffer& cos_sin, uint32_t n_tokens, uint32_t n_heads,
                    uint32_t head_dim, uint32_t n_rot, uint32_t ld, bool neox = false);
  // Causal grouped-query attention over a ragged batch: token t attends to
  // rows first_row[t] .. t (its own sequence so far). q and out (n_tokens,
  // n_heads * head_dim); k and v (n_tokens, n_kv_heads * head_dim).
  // round_f16: round q, k, v and the attention weights to F16 precision as
  // they are read (the CPU engine's f16_attention).
  // kv_pos0 (a KV cache): k and v hold kv_pos0 cached rows before the
  // n_tokens new ones, and token t attends to rows first_row[t] ..
  // t + kv_pos0 of them; q and out still hold the new tokens only.
  // window (a sliding window, Gemma 3's local layers; 0: none): each query
  // attends to the last `window` of those rows only, its own included.
  result<void> attention(const buffer& q, const buffer& k, const buffer& v,
                         const buffer& first_row, buffer& out, uint32_t n_tokens,
                         uint32_t n_heads, uint32_t n_kv_heads, uint32_t head_dim, float scale,
                         bool round_f16 = false, uint32_t kv_pos0 = 0, uint32_t window = 0);
  // dst[dst_offset + i] = src[src_offset + i] for i < count (floats).
  result<void> copy(const buffer& src, buffer& dst, uint32_t count, uint32_t src_offset = 0,
                    uint32_t dst_offset = 0);
  // out = silu(gate) * up over `count` elements; out may be gate.
  result<void> swiglu(const buffer& gate, const buffer& up, buffer& out, uint32_t count);
  // out = gelu(gate) * up (tanh form, input and result rounded to F16 as
  // llama.cpp's CPU table and the CPU engine's gemma3 take it); out may be
  // gate.
  result<void> geglu(const buffer& gate, const buffer& up, buffer& out, uint32_t count);
  // x *= s over `count` elements, in place.
  result<void> scale(buffer& x, float s, uint32_t count);
  // c = a + b over `count` elements; c may be a. b_count (0: count): b has
  // b_count elements, repeated (c[i] = a[i] + b[i % b_count]), e.g. a bias
  // row added to every row of a.
  result<void> add(const buffer& a, const buffer& b, buffer& c, uint32_t count,
                   uint32_t b_count = 0);
  // Row-wise softmax in place.
  result<void> softmax(buffer& x, uint32_t rows, uint32_t cols);
  // Per sequence s (rows offsets[s] .. offsets[s+1]-1 of h): its last row
  // into last (n_seqs, cols) and the mean of its rows into mean.
  result<void> pool(const buffer& h, const buffer& offsets, buffer& last, buffer& mean,
                    uint32_t n_seqs, uint32_t cols);

 private:
  // The pipeline for shader `name` with `options`, built on first use.
  result<const pipeline*> get(const std::string& name, const pipeline_options& options);

  // The int8 matmul (quantize_q8 + mul_mat_q8) on the slices of w.
  result<void> mul_mat_integer(const weight_matrix& w, const buffer& x, uint32_t m, buffer& y,
                               uint32_t ldx, uint32_t ldy, bool dot);

  context* ctx_;
  shader_paths paths_;
  matmul_kernel matmul_kernel_ = matmul_kernel::automatic;
  q8_kernel q8_kernel_ = q8_kernel::automatic;
  std::string last_shader_;
  // Quantized activations for mul_mat_integer(). It only grows; a buffer it
  // outgrows may still be read by a recorded dispatch, so it is kept until
  // the ops object goes (a few, each larger than the last).
  buffer q8_scratch_;
  std::vector<buffer> retired_scratch_;
  std::map<std::string, pipeline> pipelines_;  // key: name and constants
};

}  // namespace triage::vulkan
