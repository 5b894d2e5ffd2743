// slm_backend.h: the worker's classifier backend on the SLM: the classifier
// engine (base model + adapter) on the CPU, or the same engine with the base
// model's forward pass on a Vulkan device (compute/vulkan/vk_model.h).
//
//   auto b = slm_backend::load({.model = path, .adapter = "topology/adapters/banking.gguf"});
//   if (!b) return fail(b.error().message);
//   kafka_worker::create(cfg, *b.value(), opts);
//   // On a GPU; errors no_loader / no_device / ... say why there is none:
//   auto g = slm_backend::load_vulkan({.model = path, .adapter = a}, {});
#pragma once

#include <memory>

#include "base/result.h"
#include "compute/classifier/engine.h"
#include "compute/vulkan/vk_model.h"
#include "workers/backend.h"

namespace triage::workers {

class slm_backend final : public backend {
 public:
  static result<std::unique_ptr<slm_backend>> load(const classifier::engine_options& opts);
  // The engine as load() makes it (adapter checks, tokenizer, head), with the
  // features computed on a Vulkan device. Errors: the engine's, and the
  // device's (vulkan::errc: no_loader, no_device, missing_feature,
  // out_of_device_memory), for the caller to fall back on load().
  static result<std::unique_ptr<slm_backend>> load_vulkan(
      const classifier::engine_options& opts, const vulkan::vk_model_options& device_opts);

  // "cpu", or "vulkan" when the features come from the device.
  std::string name() const override { return gpu_ ? "vulkan" : "cpu"; }
  std::string model_version() const override { return engine_.model_version(); }
  std::string adapter_version() const override;
  float threshold() const override { return engine_.adapter_info().threshold; }
  int estimate_tokens(const v1::TicketEvent& ticket) const override;
  // On Vulkan, a device failure during a batch is logged and the batch runs
  // on the CPU engine instead.
  std::vector<decision> classify(std::span<const v1::TicketEvent* const> tickets) override;

 private:
  explicit slm_backend(classifier::engine e) : engine_(std::move(e)) {}
  // Predictions with the features from the device; an error if it failed.
  result<std::vector<classifier::prediction>> classify_on_device(
      std::span<const std::string> texts);

  classifier::engine engine_;
  std::unique_ptr<vulkan::vk_model> gpu_;        // null: CPU only
  std::unique_ptr<tokenizer::tokenizer> tok_;  // for the device path
};

}  // namespace triage::workers
