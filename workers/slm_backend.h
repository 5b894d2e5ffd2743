// slm_backend.h: the worker's classifier backend on the SLM: the classifier
// engine (base model + adapter) on the CPU.
//
//   auto b = slm_backend::load({.model = path, .adapter = "topology/adapters/banking.gguf"});
//   if (!b) return fail(b.error().message);
//   kafka_worker::create(cfg, *b.value(), opts);
#pragma once

#include <memory>

#include "base/result.h"
#include "compute/classifier/engine.h"
#include "workers/backend.h"

namespace triage::workers {

class slm_backend final : public backend {
 public:
  static result<std::unique_ptr<slm_backend>> load(const classifier::engine_options& opts);

  std::string name() const override { return "cpu"; }
  std::string model_version() const override { return engine_.model_version(); }
  std::string adapter_version() const override;
  float threshold() const override { return engine_.adapter_info().threshold; }
  int estimate_tokens(const v1::TicketEvent& ticket) const override;
  std::vector<decision> classify(std::span<const v1::TicketEvent* const> tickets) override;

 private:
  explicit slm_backend(classifier::engine e) : engine_(std::move(e)) {}
  classifier::engine engine_;
};

}  // namespace triage::workers
