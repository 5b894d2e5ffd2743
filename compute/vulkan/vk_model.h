// vk_model.h: a language model (every architecture the CPU engine runs:
// llama (SmolLM2, Llama), qwen2, gemma3; linear RoPE scaling and
// rope_freqs.weight as the CPU engine applies them) whose
// forward pass runs on a Vulkan device: the same results as the CPU engine's
// model::forward() (compute/model/model.h) within float rounding, for
// classification (pooled last/mean hidden states) and last-token logits.
//
//   auto m = triage::vulkan::vk_model::load(path, {.device = {.allow_cpu = true}});
//   if (!m) return use_cpu(m.error());   // no_loader, no_device, out_of_device_memory, ...
//   auto out = m.value().forward(seqs, {.pool = triage::model::pooling::both});
//   if (!out) ...;                       // invalid_argument (bad tokens) or a device error
//   std::span<const float> a_last = out.value().last_of(0);
//
// Weights are uploaded once, at load, in their GGUF types (the shaders
// dequantize them; a type the CPU reads but no shader does, such as Q5_0,
// goes up dequantized to F32); the file is closed afterwards. Each micro-batch of
// forward() is recorded into one command buffer (16 dispatches per layer, 19
// with qwen2's biases, 21 for gemma3, a barrier between each) and submitted once. Activations are f32 throughout;
// by default attention rounds Q, K, V to F16 precision as the CPU engine
// does; the CPU engine also rounds matmul inputs to int8 per block of 32,
// and so does this path by default (vk_model_options::q8_activations).
// Step-wise decoding with a KV cache on the device: make_cache + extend, or
// vk_decoder (compute/vulkan/vk_decoder.h), the model::step_decoder the
// generator takes.
// One call at a time per model.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "compute/model/config.h"
#include "compute/model/model.h"
#include "compute/vulkan/context.h"

namespace triage::vulkan {

struct vk_model_options {
  // Which device, and whether lavapipe may serve (see context_options).
  // Default: best GPU, no CPU-type device.
  context_options device = {};
  // Most tokens per micro-batch (one submit each): bounds activation memory
  // (~30 KB per token for SmolLM2-135M). A longer sequence runs alone.
  // Default: 512.
  int64_t max_batch_tokens = 512;
  // Largest weight buffer; matrices above it are split by rows (0: the
  // device's maxStorageBufferRange). Tests set it low to exercise splitting.
  // Default: 0.
  uint64_t max_buffer_bytes = 0;
  // Round Q, K, V and the attention weights to F16 precision, as the CPU
  // engine (model_options::f16_attention) and llama.cpp's F16 KV cache do,
  // so that both engines give closer results. Default: true.
  bool f16_attention = true;
  // Round activations to int8 per block of 32 before quantized matmuls, as
  // the CPU engine's integer kernels (and ggml's CPU backend) do. Off, the
  // device computes in f32, which is closer to exact but further from the
  // CPU engine: on SmolLM2 (vulkan_model_test, lavapipe) the worst
  // sequence's logits cosine against the CPU engine is 0.99911 with it on,
  // 0.99846 off (with an older CPU engine it was the other way round). On,
  // because adapters' thresholds are calibrated on the CPU engine's
  // features, and a device should reproduce them as closely as it can.
  // Default: true.
  bool q8_activations = true;
  // LoRA adapters merged into the weights at load, in order, as the CPU
  // engine's model_options::loras does (model::merge_loras); each merged
  // matrix is uploaded as F32 (F16 with lora_f16). Default: empty.
  std::vector<model::lora_spec> loras = {};
  // Keep merged matrices as F16 (half the device memory). Default: false.
  bool lora_f16 = false;
};

// The keys and values of one sequence on the device, every layer, for
// positions 0 .. capacity() - 1 (vk_model::make_cache, vk_model::extend).
// Going back to a shorter length is free (set_size): the next extend
// overwrites the positions after it. F32; attention rounds them to F16
// precision as it reads them when vk_model_options::f16_attention is on, so
// the cached values are those of the CPU engine's F16 cache.
class vk_kv_cache {
 public:
  vk_kv_cache() = default;
  int64_t size() const { return size_; }  // positions filled
  int64_t capacity() const { return capacity_; }
  // n <= size() (not checked here; vk_decoder checks it).
  void set_size(int64_t n) { size_ = n; }

 private:
  friend class vk_model;
  std::vector<buffer> k_;  // per layer: (capacity, kv_dim)
  std::vector<buffer> v_;
  int64_t capacity_ = 0;
  int64_t size_ = 0;
  int kv_dim_ = 0;
};

class vk_model {
 public:
  // Reads the GGUF file, checks the tensors as the CPU loader does, opens the
  // device and uploads the weights. Errors: the loader's (file, key, tensor),
  // the device's (no_loader, no_device, missing_feature,
  // out_of_device_memory), invalid_argument for a weight type the shaders
  // do not read (nor the CPU), naming the file and tensor.
  static result<vk_model> load(const std::string& path, const vk_model_options& opts = {});

  vk_model(vk_model&&) noexcept;
  vk_model& operator=(vk_model&&) noexcept;
  ~vk_model();

  const model::config& cfg() const;
  const device_info& device() const;
  // Bytes of weights on the device.
  uint64_t weight_bytes() const;
  // What the validation layer reported on this model's context (empty
  // unless vk_model_options::device.validation); see context.
  std::vector<std::string> validation_messages() const;

  // As model::forward() (pooled states of layer -1 or 0 .. n_layers, last
  // token logits with layer -1); all_logits is not supported
  // (invalid_argument). Errors:
  // invalid_argument for an empty sequence, one longer than the context, a
  // token outside the vocabulary; device errors.
  result<model::prefill_result> forward(std::span<const std::vector<int32_t>> seqs,
                                        const model::forward_options& opts = {});

  // A KV cache for one sequence of up to `capacity` positions (1 .. the
  // context length; else invalid_argument), 2 * n_layers * kv_dim floats per
  // position (45 KB for SmolLM2-135M). Errors: out_of_device_memory.
  result<vk_kv_cache> make_cache(int64_t capacity);
  // Incremental decoding, as model::model::extend: runs `tokens` (one or
  // many) as the continuation of the sequence in `cache` (their keys and
  // values are appended, at positions size() ..) and writes the last
  // token's logits (vocab floats) to `logits`. One submit. Errors:
  // invalid_argument for no tokens, a token outside the vocabulary, a cache
  // of another model, too short a logits span, tokens beyond the cache's
  // capacity (nothing is appended then); device errors (the cache's size is
  // unchanged then).
  result<void> extend(vk_kv_cache& cache, std::span<const int32_t> tokens, std::span<float> logits);

 private:
  struct impl;
  explicit vk_model(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace triage::vulkan
