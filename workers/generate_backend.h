// generate_backend.h: the worker's classifier backend in generate mode
// (topology `mode: generate`): the instruct model writes
// {"category", "urgency"} under the schema constraint of
// compute/classifier/generate.h, on the CPU or a Vulkan device (backend
// "vulkan": compute/vulkan/vk_decoder.h); the confidence is the model's
// probability of the category, temperature-scaled by the calibration file
// `triage calibrate-generate` wrote.
//
//   auto b = generate_backend::load({.model = path, .taxonomy = "data/banking77/taxonomy.csv",
//                                    .generate = cfg.generate});
//   if (!b) return fail(b.error().message);   // names the file or field at fault
//   kafka_worker::create(cfg, *b.value(), opts);
//   // On a GPU, else the CPU with a logged reason ("vulkan-required": fail):
//   auto g = generate_backend::load({.model = path, .generate = cfg.generate,
//                                    .backend = "vulkan"});
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "compute/classifier/generate.h"
#include "compute/classifier/taxonomy.h"
#include "compute/model/model.h"
#include "compute/tokenizer/tokenizer.h"
#include "compute/vulkan/vk_model.h"
#include "topology/config.h"
#include "workers/backend.h"

namespace triage::workers {

struct generate_backend_options {
  // Base (instruct) model GGUF. Default: "" (must be given).
  std::string model;
  // Taxonomy CSV: the categories the output may name. Default: banking77's.
  std::string taxonomy = "data/banking77/taxonomy.csv";
  // Worker threads of the model. Default: 0 (one per hardware thread).
  int threads = 0;
  // The topology's generate section (template, prompt, budgets, calibration).
  topology::generate_options generate;
  // Where the model runs: "cpu"; "vulkan": on a Vulkan device, or on the CPU
  // with a logged warning when there is none usable (a vulkan::errc error:
  // no loader, no device, missing feature, out of memory); "vulkan-required":
  // fail then. generate.loras are merged on the host and uploaded.
  // Default: "cpu".
  std::string backend = "cpu";
  // Device options for the Vulkan backends (device choice, pipeline cache);
  // its loras are replaced by generate.loras. Default: the best GPU.
  vulkan::vk_model_options device = {};
};

// The generator's spec from the topology's generate section.
classifier::generate_spec generate_spec_of(const topology::generate_options& g);

class generate_backend final : public backend {
 public:
  // Errors: the model's, the taxonomy's, a bad spec (bad_training), and a
  // calibration file that is unreadable or was fitted for another model,
  // taxonomy or prompt (adapter_mismatch).
  static result<std::unique_ptr<generate_backend>> load(const generate_backend_options& opts);

  // "cpu-generate", or "vulkan-generate" when the decoder runs on a device.
  std::string name() const override { return gpu_ ? "vulkan-generate" : "cpu-generate"; }
  std::string model_version() const override { return model_version_; }
  // "generate@<prompt sha, 12>", with "+calibrated" when a calibration is loaded.
  std::string adapter_version() const override;
  float threshold() const override { return calibration_.threshold; }
  int estimate_tokens(const v1::TicketEvent& ticket) const override;
  std::vector<decision> classify(std::span<const v1::TicketEvent* const> tickets) override;

  // One generation per text, with its calibrated category probabilities.
  struct scored {
    classifier::generation out;
    std::vector<float> calibrated;  // (n_categories)
  };
  std::vector<scored> generate(std::span<const std::string> texts);
  const classifier::taxonomy& tax() const { return tax_; }
  const classifier::generate_calibration& calibration() const { return calibration_; }
  bool calibrated() const { return has_calibration_; }
  // model_fingerprint() of the base model.
  const std::string& fingerprint() const { return fingerprint_; }
  // The Vulkan model the generator runs on; null on the CPU.
  const vulkan::vk_model* device_model() const { return gpu_.get(); }

 private:
  generate_backend() = default;
  // One ticket; on Vulkan, a device failure is logged and the ticket runs
  // on the CPU instead.
  classifier::generation run_one(const std::string& text);
  result<void> make_cpu_generator();

  std::unique_ptr<model::model> model_;
  std::unique_ptr<tokenizer::tokenizer> tok_;
  std::unique_ptr<classifier::generator> gen_;      // on the device when gpu_
  std::unique_ptr<vulkan::vk_model> gpu_;           // null: CPU only
  std::unique_ptr<classifier::generator> cpu_gen_;  // on Vulkan: the fallback, made on first need
  classifier::generate_spec spec_;
  classifier::taxonomy tax_;
  classifier::generate_calibration calibration_;
  bool has_calibration_ = false;
  std::string model_version_;
  std::string prompt_sha_;
  std::string fingerprint_;
};

}  // namespace triage::workers
