// gemma3.h: the forward pass of the gemma3 architecture (Gemma 3 text
// models, e.g. Gemma 3 270M), as llama.cpp's gemma3 graph computes it:
//   x = embed(tokens) * sqrt(dim)
//   per block:  h = n1(x);  q = qnorm(Wq h), k = knorm(Wk h) per head, RoPE
//               NeoX on both, v = Wv h;  x += n2(Wo attn(q, k, v))
//               h = n3(x);  x += n4(Wdown (gelu(Wgate h) * Wup h))
// with n1..n4 RMSNorms (attn_norm, post_attention_norm, ffn_norm,
// post_ffw_norm; the GGUF converter has already added Gemma's "+1" to their
// weights), GELU in its tanh form, attention scaled by 1/sqrt(head_dim).
// Layers alternate: config::is_local(layer) layers attend to the last
// sliding_window positions only, with RoPE base rope_freq_base_swa (10000);
// the others (every 6th) attend to everything, with rope_freq_base (1e6).
//
// Like llama_forward it runs the blocks only; model.cc does the final norm,
// pooling and the (tied) output layer.
//
//   triage::model::gemma3_forward(cfg, w, batch, cfg.n_layers, opts, st, pool, nullptr);
//   // st.x: (batch.n_tokens(), dim) residual stream after the last block
#pragma once

#include "compute/cpu/thread_pool.h"
#include "compute/model/batch.h"
#include "compute/model/config.h"
#include "compute/model/kv_cache.h"
#include "compute/model/llama.h"
#include "compute/model/run_state.h"
#include "compute/model/weights.h"

namespace triage::model {

// The same contract as llama_forward (llama.h): fills st.x with the scaled
// embeddings of b and runs blocks [0, n_blocks), appending to the cache when
// given (one sequence, continuing at cache->size()).
void gemma3_forward(const config& c, const weights& w, const ragged_batch& b, int n_blocks,
                    const block_options& opts, run_state& st, cpu::thread_pool& pool,
                    kv_cache* cache);

}  // namespace triage::model
