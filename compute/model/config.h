// config.h: the hyperparameters of a decoder-only transformer, read from a
// GGUF file's `<arch>.*` metadata (llama.cpp's key names). Validation names
// the key at fault: "model.gguf: 'llama.attention.head_count' is missing".
//
//   auto cfg = triage::model::read_config(reader);     // result<config>
//   if (!cfg) return cfg.error();
//   int kv_dim = cfg.value().kv_dim();                 // n_kv_heads * head_dim
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "compute/gguf/reader.h"

namespace triage::model {

// The architectures the engine runs. llama.cc runs llama and qwen2 (llama
// with biases on the Q, K and V projections and NeoX-style RoPE); gemma3.cc
// runs gemma3.
enum class architecture {
  llama,   // Llama 2/3, SmolLM2, Mistral-style: RMSNorm, SwiGLU, RoPE "normal", GQA
  qwen2,   // Qwen2, Qwen2.5: llama + Q/K/V biases, RoPE "neox"
  gemma3,  // Gemma 3: scaled embeddings, Q/K norms, post-norms, GeGLU, sliding windows
};

struct config {
  architecture arch = architecture::llama;
  std::string arch_name;       // general.architecture, the prefix of the keys
  int n_layers = 0;            // <arch>.block_count
  int dim = 0;                 // <arch>.embedding_length
  int n_heads = 0;             // <arch>.attention.head_count
  int n_kv_heads = 0;          // <arch>.attention.head_count_kv (default n_heads)
  int head_dim = 0;            // <arch>.attention.key_length (default dim / n_heads)
  int ffn_dim = 0;             // <arch>.feed_forward_length
  int vocab_size = 0;          // <arch>.vocab_size, else rows of token_embd.weight
  int context_length = 0;      // <arch>.context_length (training context)
  int rope_dim = 0;            // <arch>.rope.dimension_count (default head_dim)
  float rope_freq_base = 10000.0f;  // <arch>.rope.freq_base (default 10000)
  // Linear RoPE scaling: 1 / <arch>.rope.scaling.factor (or the older
  // <arch>.rope.scale_linear) when <arch>.rope.scaling.type is "linear" or
  // absent (llama.cpp's default), 1 without a factor; other scaling types
  // (yarn, longrope) are refused. gemma3 applies it to its global layers only.
  float rope_freq_scale = 1.0f;
  float rms_eps = 1e-5f;       // <arch>.attention.layer_norm_rms_epsilon
  int32_t bos_id = -1;         // tokenizer.ggml.bos_token_id (-1: none)
  int32_t eos_id = -1;         // tokenizer.ggml.eos_token_id (-1: none)
  // From the architecture, as llama.cpp sets them:
  bool rope_neox = false;      // rotate the two halves of a head (qwen2) rather than pairs
  bool qkv_bias = false;       // blk.N.attn_{q,k,v}.bias are added after the projections
  // gemma3 (as llama.cpp's gemma3 graph):
  // <arch>.attention.sliding_window: local layers attend to the last
  // `sliding_window` positions, the query's own included (0: no local layers).
  int sliding_window = 0;
  // Every swa_period-th layer (il % swa_period == swa_period - 1) is global,
  // the others local; 0: all global. llama.cpp fixes 6 for gemma3.
  int swa_period = 0;
  float rope_freq_base_swa = 10000.0f;  // RoPE base of the local layers (llama.cpp: 10000)
  float attn_scale = 0.0f;     // query scale; 0: 1 / sqrt(head_dim) (gemma3 27B: 1 / sqrt(dim / n_heads))
  bool embed_scale = false;    // embeddings times sqrt(dim)

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  bool is_local(int layer) const {
    return sliding_window > 0 && swa_period > 0 && layer % swa_period < swa_period - 1;
  }
};

// Reads and checks the hyperparameters; the vocabulary size falls back to
// token_embd.weight's row count when <arch>.vocab_size is absent.
result<config> read_config(const gguf::reader& gguf);

}  // namespace triage::model
