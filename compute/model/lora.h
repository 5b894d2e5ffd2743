// lora.h: LoRA adapters in the GGUF layout llama.cpp's convert_lora_to_gguf.py
// writes, merged into a model's weights when it loads.
//
//   auto m = triage::model::model::load(path, {.loras = {{"tickets.lora.gguf", 1.0f}}});
//   if (!m) return m.error();   // names the adapter file and the key or tensor at fault
//
// The file: general.type = "adapter", adapter.type = "lora",
// general.architecture the base model's, adapter.lora.alpha (F32, optional),
// and for each target weight W (ggml shape (n_in, n_out), a matmul
// y = W x) a pair "<W name>.lora_a" of ggml shape (n_in, rank) and
// "<W name>.lora_b" of ggml shape (rank, n_out), in any type the CPU kernels
// read (F32, F16, BF16, Q8_0, ...). Tensors named "*_norm.weight" are ignored,
// as llama.cpp ignores them. Merging replaces each target with
//   W' = dequantize(W) + s * B A,   s = scale * alpha / rank   (s = scale when
// alpha is 0 or absent), llama.cpp's factor (llama_adapter_lora_weight::
// get_scale), as an F32 (or, with model_options::lora_f16, F16) matrix owned
// by the model; every other weight stays in the base file's mapping. A scale of 0 checks the adapter but merges nothing.
// llama.cpp applies the adapter at run time (W x + s B (A x), W quantized and
// x quantized to 8 bits for it); the merged F32 matrix multiplies unquantized
// activations instead, so results differ from llama.cpp's by about as much as
// its activation quantization (see model_lora_test.cc for the measured bound).
//
// Targets: the matrices of the blocks (attn_q/k/v/output, ffn_gate/up/down)
// and output.weight when the model has its own; token_embd.weight (which
// llama.cpp treats with A and B swapped) is refused with an error.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "compute/gguf/reader.h"

namespace triage::cpu {
class thread_pool;
}

namespace triage::model {

struct config;
struct weights;

// One LoRA adapter to apply when loading a model.
struct lora_spec {
  // Path of the adapter GGUF file. Default: empty (an error when loading).
  std::string path;
  // Multiplier of the adapter's update, W += scale * (alpha / rank) * B A,
  // as llama.cpp's --lora-scaled / lora_scale; 0 leaves the base weights as
  // they are, negative values subtract. Must be finite. Default: 1.0.
  float scale = 1.0f;
};

// An adapter file, opened and checked on its own (metadata, names, pairs and
// ranks); checked against a model by merge_loras.
struct lora_adapter {
  struct pair {
    std::string target;  // the base tensor, e.g. "blk.0.attn_q.weight"
    gguf::tensor_info a;  // "<target>.lora_a", ggml (n_in, rank)
    gguf::tensor_info b;  // "<target>.lora_b", ggml (rank, n_out)
    int64_t rank = 0;     // b.ne[0]
  };
  gguf::reader file;
  std::string architecture = {};  // general.architecture
  float alpha = 0.0f;        // adapter.lora.alpha; 0 when absent
  std::vector<pair> pairs = {};  // in file order of their lora_a

  // Errors name the file and the key or tensor: a file that is not a LoRA
  // adapter (general.type, adapter.type), a tensor that is neither lora_a,
  // lora_b nor a norm, a pair with a half missing, a tensor that is not 2-D
  // or of a type the kernels cannot read, A and B of different ranks.
  static result<lora_adapter> open(const std::string& path);
};

// Merges the adapters, in order, into `w` (the weights of the model whose
// file is `base` and hyperparameters `cfg`). Every adapter is checked against
// the model before anything is merged: same general.architecture, every
// target a matrix of the model, lora_a's n_in and lora_b's n_out equal to the
// target's. Each merged matrix is computed in F32 and kept as `merged_type`
// (F32 in w.converted, or F16 in w.converted_f16; anything else throws
// std::invalid_argument); the views in `w` point at them. `pool` splits the
// work over threads when given.
result<void> merge_loras(const gguf::reader& base, const config& cfg, weights& w,
                         std::span<const lora_spec> loras, cpu::thread_pool* pool = nullptr,
                         gguf::tensor_type merged_type = gguf::tensor_type::f32);

}  // namespace triage::model
