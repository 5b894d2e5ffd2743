// llama.h: the forward pass of the llama architecture (Llama 2/3, SmolLM2):
// per block, x += Wo attn(rope(Wq n1(x)), rope(Wk n1(x)), Wv n1(x)) and
// x += Wdown (silu(Wgate n2(x)) * Wup n2(x)), with n1, n2 RMSNorms, grouped-
// query attention and RoPE on adjacent pairs (ggml's "normal" mode, which the
// GGUF converter's Q/K permutation makes equal to HF's rotate_half).
// qwen2 runs through the same code: the Q, K and V biases are added after
// the projections and RoPE rotates the two halves of each head ("neox"), as
// config.h's qkv_bias and rope_neox say.
//
// It runs the blocks only; the caller (model.cc) does the final norm, the
// pooling and the output layer, so that classification can stop early and
// never pays for the vocabulary-wide output matmul.
//
//   triage::model::llama_forward(cfg, w, batch, cfg.n_layers, opts, st, pool, nullptr);
//   // st.x: (batch.n_tokens(), dim) residual stream after the last block
#pragma once

#include "compute/cpu/thread_pool.h"
#include "compute/model/batch.h"
#include "compute/model/config.h"
#include "compute/model/kv_cache.h"
#include "compute/model/run_state.h"
#include "compute/model/weights.h"

namespace triage::model {

struct block_options {
  // Round Q, K, V and the attention weights to F16, as llama.cpp's CPU
  // backend does with its F16 KV cache (keeps results closest to it).
  // Default: true.
  bool f16_attention = true;
};

// Fills st.x with the token embeddings of b and runs blocks [0, n_blocks).
// With a cache (b must hold one sequence), b continues the cached positions
// (b.positions start at cache->size()), its keys and values are appended and
// attention covers the cached past as well.
void llama_forward(const config& c, const weights& w, const ragged_batch& b, int n_blocks,
                   const block_options& opts, run_state& st, cpu::thread_pool& pool,
                   kv_cache* cache);

}  // namespace triage::model
