// vk_decoder.h: step-wise decoding on a Vulkan device: the
// model::step_decoder (compute/model/model.h) of a vk_model, with the
// sequence's keys and values kept on the device (vk_kv_cache). The
// constrained generator (compute/classifier/generate.h) runs on it as on
// the CPU engine's model::decoder.
//
//   auto gpu = triage::vulkan::vk_model::load(path, {.device = {.allow_cpu = true}});
//   auto d = triage::vulkan::vk_decoder::create(gpu.value(), 256);
//   if (!d) return d.error();                  // invalid_argument, out_of_device_memory
//   auto logits = d.value()->feed(prompt_ids);  // last token's logits (vocab)
//   const int64_t mark = d.value()->size();
//   d.value()->feed(std::vector<int32_t>{a}); d.value()->truncate(mark);
//
// Errors in feed() are exceptions, as model::decoder's: std::invalid_argument
// (no tokens, a token outside the vocabulary), std::length_error (beyond
// capacity), and vulkan::device_failure for a failed device call (its
// error() says which; the sequence is as before the call).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <vector>

#include "base/result.h"
#include "compute/model/model.h"
#include "compute/vulkan/vk_model.h"

namespace triage::vulkan {

// A device call failed during vk_decoder::feed (out of memory, device lost...).
class device_failure : public std::runtime_error {
 public:
  explicit device_failure(error e) : std::runtime_error(e.what()), error_(std::move(e)) {}
  const error& err() const { return error_; }

 private:
  error error_;
};

class vk_decoder final : public model::step_decoder {
 public:
  // capacity: most positions the sequence will hold (clamped to 1 .. the
  // model's context length, as model::decoder does). The model must outlive
  // the decoder; one decoder at a time per model (they share its buffers).
  // Errors: out_of_device_memory for the cache.
  static result<std::unique_ptr<vk_decoder>> create(vk_model& m, int64_t capacity);

  std::span<const float> feed(std::span<const int32_t> tokens) override;
  void truncate(int64_t n) override;
  int64_t size() const override { return cache_.size(); }
  int64_t capacity() const override { return cache_.capacity(); }
  std::span<const float> logits() const override { return logits_; }

 private:
  vk_decoder(vk_model& m, vk_kv_cache c);

  vk_model* m_;
  vk_kv_cache cache_;
  std::vector<float> logits_;
};

}  // namespace triage::vulkan
