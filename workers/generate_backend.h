// generate_backend.h: the worker's classifier backend in generate mode
// (topology `mode: generate`): the instruct model writes
// {"category", "urgency"} under the schema constraint of
// compute/classifier/generate.h, on the CPU; the confidence is the model's
// probability of the category, temperature-scaled by the calibration file
// `triage calibrate-generate` wrote.
//
//   auto b = generate_backend::load({.model = path, .taxonomy = "data/banking77/taxonomy.csv",
//                                    .generate = cfg.generate});
//   if (!b) return fail(b.error().message);   // names the file or field at fault
//   kafka_worker::create(cfg, *b.value(), opts);
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
};

// The generator's spec from the topology's generate section.
classifier::generate_spec generate_spec_of(const topology::generate_options& g);

class generate_backend final : public backend {
 public:
  // Errors: the model's, the taxonomy's, a bad spec (bad_training), and a
  // calibration file that is unreadable or was fitted for another model,
  // taxonomy or prompt (adapter_mismatch).
  static result<std::unique_ptr<generate_backend>> load(const generate_backend_options& opts);

  std::string name() const override { return "cpu-generate"; }
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

 private:
  generate_backend() = default;

  std::unique_ptr<model::model> model_;
  std::unique_ptr<tokenizer::tokenizer> tok_;
  std::unique_ptr<classifier::generator> gen_;
  classifier::taxonomy tax_;
  classifier::generate_calibration calibration_;
  bool has_calibration_ = false;
  std::string model_version_;
  std::string prompt_sha_;
  std::string fingerprint_;
};

}  // namespace triage::workers
