// vk_model.h: a language model (llama architecture: SmolLM2, Llama) whose
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
// dequantize them); the file is closed afterwards. Each micro-batch of
// forward() is recorded into one command buffer (16 dispatches per layer, a
// barrier between each) and submitted once. Activations are f32 throughout;
// by default attention rounds Q, K, V to F16 precision as the CPU engine
// does; the CPU engine also rounds matmul inputs to int8 per block of 32,
// which this path can emulate but by default does not (see
// vk_model_options::q8_activations).
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
  // device computes in f32, which is closer to exact: emulating the int8
  // rounding makes the two engines' small differences flip roundings and
  // grow (on SmolLM2 the logits' cosine drops from 0.9988+ to 0.996 on some
  // prompts). Default: false.
  bool q8_activations = false;
};

class vk_model {
 public:
  // Reads the GGUF file, checks the tensors as the CPU loader does, opens the
  // device and uploads the weights. Errors: the loader's (file, key, tensor),
  // the device's (no_loader, no_device, missing_feature,
  // out_of_device_memory), invalid_argument for a weight type the shaders
  // do not read.
  static result<vk_model> load(const std::string& path, const vk_model_options& opts = {});

  vk_model(vk_model&&) noexcept;
  vk_model& operator=(vk_model&&) noexcept;
  ~vk_model();

  const model::config& cfg() const;
  const device_info& device() const;
  // Bytes of weights on the device.
  uint64_t weight_bytes() const;

  // As model::forward() (pooled states of layer -1 or 0 .. n_layers, last
  // token logits with layer -1); all_logits is not supported
  // (invalid_argument). Errors:
  // invalid_argument for an empty sequence, one longer than the context, a
  // token outside the vocabulary; device errors.
  result<model::prefill_result> forward(std::span<const std::vector<int32_t>> seqs,
                                        const model::forward_options& opts = {});

 private:
  struct impl;
  explicit vk_model(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace triage::vulkan
