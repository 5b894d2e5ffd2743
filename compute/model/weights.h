// weights.h: the tensors of a decoder-only transformer, as views into the
// GGUF mapping (nothing is copied, except 1-D tensors stored in a type other
// than F32, which are converted once; they are a few KB). Shapes are (rows,
// cols) with cols the contiguous dimension, i.e. (ne1, ne0) in GGUF terms;
// a matmul computes x W^T, so rows are the outputs.
//
//   auto w = triage::model::load_weights(reader, cfg);   // result<weights>
//   const auto& l0 = w.value().layers[0];
//   triage::cpu::matmul(l0.wq, x, n_tokens, q, pool);     // (n_tokens, q_dim)
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "base/result.h"
#include "compute/cpu/matmul.h"
#include "compute/gguf/reader.h"
#include "compute/model/config.h"

namespace triage::model {

struct layer_weights {
  std::span<const float> attn_norm;  // (dim) blk.N.attn_norm.weight
  cpu::matrix_view wq;               // (q_dim, dim) blk.N.attn_q.weight
  cpu::matrix_view wk;               // (kv_dim, dim) blk.N.attn_k.weight
  cpu::matrix_view wv;               // (kv_dim, dim) blk.N.attn_v.weight
  cpu::matrix_view wo;               // (dim, q_dim) blk.N.attn_output.weight
  // Projection biases (qwen2; empty when the architecture has none).
  std::span<const float> bq;         // (q_dim) blk.N.attn_q.bias
  std::span<const float> bk;         // (kv_dim) blk.N.attn_k.bias
  std::span<const float> bv;         // (kv_dim) blk.N.attn_v.bias
  // gemma3 only (empty otherwise): per-head RMSNorm of Q and K, and the
  // norms of the attention and FFN outputs before the residual adds.
  std::span<const float> attn_q_norm;     // (head_dim) blk.N.attn_q_norm.weight
  std::span<const float> attn_k_norm;     // (head_dim) blk.N.attn_k_norm.weight
  std::span<const float> post_attn_norm;  // (dim) blk.N.post_attention_norm.weight
  std::span<const float> post_ffn_norm;   // (dim) blk.N.post_ffw_norm.weight
  std::span<const float> ffn_norm;   // (dim) blk.N.ffn_norm.weight
  cpu::matrix_view w_gate;           // (ffn_dim, dim) blk.N.ffn_gate.weight
  cpu::matrix_view w_up;             // (ffn_dim, dim) blk.N.ffn_up.weight
  cpu::matrix_view w_down;           // (dim, ffn_dim) blk.N.ffn_down.weight
};

struct weights {
  cpu::matrix_view token_embd;         // (vocab, dim) token_embd.weight: rows looked up
  std::span<const float> output_norm;  // (dim) output_norm.weight
  cpu::matrix_view output;             // (vocab, dim) output.weight, or token_embd when tied
  bool tied_output = false;            // the file has no output.weight
  std::vector<layer_weights> layers;   // (n_layers)
  // rope_freqs.weight (rope_dim / 2): per-pair divisors of the RoPE
  // frequencies (Llama 3 scaling); empty when the file has none.
  std::span<const float> rope_freqs;
  // 1-D tensors converted to F32, and matrices merged with LoRA adapters
  // (lora.h), each a separate allocation, so the views above stay valid
  // when `weights` moves.
  std::vector<std::unique_ptr<float[]>> converted;
  // LoRA-merged matrices kept as F16 (model_options::lora_f16).
  std::vector<std::unique_ptr<uint16_t[]>> converted_f16;
};

// Finds and checks every tensor the architecture needs (llama, plus the
// Q/K/V biases for qwen2, plus the Q/K and post norms for gemma3): present, 2-D
// or 1-D with exactly the configured shape, of a type the kernels read.
// Errors name the tensor, e.g. "model.gguf: tensor 'blk.3.attn_k.weight' has
// shape (576, 64), expected (576, 192) [ne0, ne1]".
result<weights> load_weights(const gguf::reader& gguf, const config& cfg);

}  // namespace triage::model
