// adapter.h: the classifier adapter, a small versioned GGUF file holding
// what turns a base model's features into triage decisions: the head's
// weights, the label names and their taxonomy hash, the calibration
// temperature, the escalation threshold, how features are taken (layer,
// pooling, prompt template, token budget), the identity of the base model,
// and baseline distributions for drift tracking.
//
//   auto a = load_adapter("topology/adapters/banking.gguf");
//   if (!a) return a.error();                                    // names the key
//   if (auto ok = check_compatible(a.value(), model_fingerprint(gguf), tax); !ok)
//     return ok.error();                                         // adapter_mismatch
//
// Layout: general.architecture = "triage-adapter"; keys under "triage.";
// tensors "head.*" in F32 ("head.<k>.*" for ensemble member k >= 1). Unknown keys are ignored (newer minor versions);
// a newer major format version is refused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "compute/classifier/head.h"
#include "compute/classifier/taxonomy.h"
#include "compute/gguf/reader.h"

namespace triage::classifier {

// 1: one head. 2: adds triage.head.members (K >= 2 heads whose logits are
// averaged; member k >= 1 in tensors "head.<k>.*"). Single-head adapters are
// still written as version 1, so older builds keep reading them.
inline constexpr uint32_t adapter_format_version = 2;

struct adapter {
  std::string name;                // e.g. "banking"
  std::string created_by;          // the command that produced it, for reproduction
  // Identity of the base model the features came from.
  std::string base_model_name;     // general.name of the base model
  std::string base_fingerprint;    // model_fingerprint() of the base model file
  // Labels: the head predicts intents; category and urgency follow from the taxonomy.
  std::string taxonomy_sha256;
  std::vector<std::string> intents;
  std::vector<std::string> categories;
  std::vector<int32_t> intent_category;  // (n_intents)
  std::vector<int32_t> intent_urgency;   // (n_intents)
  // How features are taken.
  int32_t layer = -1;              // -1: the final normalised hidden state
  std::string pooling = "mean";    // "mean" or "last"
  std::string prompt_template = "{text}";  // "{text}" is replaced by the ticket text
  int32_t max_tokens = 512;        // token budget; longer tickets are truncated and flagged
  // Decision.
  float temperature = 1.0f;        // calibrated softmax temperature
  float threshold = 1.0f;          // route automatically when confidence >= threshold
  float target_accuracy = 0.98f;   // what the threshold was chosen for
  // Baselines from the calibration split, for drift (population stability index).
  std::vector<float> baseline_category_share;   // (n_categories)
  std::vector<float> baseline_confidence_hist;  // (10) share per confidence decile
  head intent_head;
};

result<void> save_adapter(const adapter& a, const std::string& path);
result<adapter> load_adapter(const std::string& path);
result<adapter> parse_adapter(const gguf::reader& file);

// SHA-256 over the model's header (metadata and tensor table) and the first
// and last 64 bytes of every tensor: cheap to compute at load, and changed by
// any requantisation, fine-tune or architecture change.
std::string model_fingerprint(const gguf::reader& model);

// adapter_mismatch, naming what differs, when `a` was not built for this
// base model and taxonomy.
result<void> check_compatible(const adapter& a, std::string_view base_fingerprint,
                              const taxonomy& tax);

}  // namespace triage::classifier
