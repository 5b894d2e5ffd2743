// slm_backend.h: the worker's classifier backend on the SLM: the classifier
// engine (base model + adapter) on the CPU, or the same engine with the base
// model's forward pass on a Vulkan device (compute/vulkan/vk_model.h).
//
//   auto b = slm_backend::load({.model = path, .adapter = "topology/adapters/banking.gguf"});
//   if (!b) return fail(b.error().message);
//   kafka_worker::create(cfg, *b.value(), opts);
//   // On a GPU; errors no_loader / no_device / ... say why there is none:
//   auto g = slm_backend::load_vulkan({.model = path, .adapter = a}, {});
//   // Shadow mode: a candidate adapter judges beside the live one
//   // (decision::shadow), never routing; workers/shadow.h.
//   if (auto ok = b.value()->set_shadow("topology/adapters/banking.candidate.gguf"); !ok) ...
#pragma once

#include <memory>
#include <optional>
#include <string>

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

  // Shadow mode: `path`, a candidate adapter for the same base model and
  // taxonomy (load_shadow_adapter's checks; errors name the file), also
  // judges every ticket, into decision::shadow. Cost: when it takes the
  // features the live adapter's way (same_features), only its head runs on
  // the live features (microseconds a ticket); otherwise a second feature
  // extraction on the CPU engine per batch (about doubling a CPU batch's
  // time; on Vulkan the extra pass still runs on the CPU).
  result<void> set_shadow(const std::string& path);
  // The candidate, when one is set.
  const classifier::adapter* shadow() const { return shadow_ ? &*shadow_ : nullptr; }
  // True when the candidate runs on the live features (no second pass).
  bool shadow_shares_features() const { return shadow_same_features_; }

 private:
  explicit slm_backend(classifier::engine e) : engine_(std::move(e)) {}
  // Predictions with the features from the device; an error if it failed.
  result<std::vector<classifier::prediction>> classify_on_device(
      std::span<const std::string> texts, std::vector<float>& features);

  classifier::engine engine_;
  std::unique_ptr<vulkan::vk_model> gpu_;        // null: CPU only
  std::unique_ptr<tokenizer::tokenizer> tok_;  // for the device path
  std::string adapter_path_;                    // the live adapter's file
  std::optional<classifier::adapter> shadow_;   // the candidate (shadow mode)
  std::string shadow_path_;
  bool shadow_same_features_ = false;
};

}  // namespace triage::workers
