// engine.h: tickets in, triage predictions out: the prompt template and
// token budget, the model's pooled features, the adapter's head, the
// calibrated probabilities and the category/urgency they imply.
//
//   auto e = engine::load({.model = model_path, .adapter = "topology/adapters/banking.gguf"});
//   if (!e) return e.error();                       // adapter_mismatch, bad_adapter, ...
//   auto preds = e.value().classify(texts);         // one per text
//   preds[0].category, preds[0].confidence, preds[0].truncated
//
// Features are also what `triage train` fits heads on (features()), so
// training and serving take them the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "compute/classifier/adapter.h"
#include "compute/model/model.h"
#include "compute/tokenizer/tokenizer.h"

namespace triage::classifier {

// How a ticket becomes the model's input, and which hidden state is read.
struct feature_spec {
  // "{text}" is replaced by the ticket text; the rest frames it.
  // Default: "{text}".
  std::string prompt_template = "{text}";
  // Token budget of the whole prompt; the ticket text is cut to fit and the
  // ticket flagged truncated. Default: 512. Bounds: 8..model context.
  int max_tokens = 512;
  // -1: final normalised state; 0..n_layers: residual stream after that block.
  int layer = -1;
  // "mean" or "last". Default: "mean".
  std::string pooling = "mean";
};

struct tokenized_ticket {
  std::vector<int32_t> ids;
  bool truncated = false;
};

// The prompt's token ids: template text around the ticket text; the ticket
// part is cut (from its end) so the whole fits max_tokens.
tokenized_ticket tokenize_ticket(const tokenizer::tokenizer& tok, const feature_spec& spec,
                                 std::string_view text);

struct feature_progress {
  size_t done = 0, total = 0;
};

// Pooled features (n, dim) for every text, in batches of `batch` tickets.
std::vector<float> extract_features(model::model& m, const tokenizer::tokenizer& tok,
                                    const feature_spec& spec, std::span<const std::string> texts,
                                    int batch = 32,
                                    const std::function<void(feature_progress)>& progress = {},
                                    std::vector<uint8_t>* truncated = nullptr,
                                    std::vector<uint32_t>* prompt_tokens = nullptr);

struct prediction {
  int32_t intent = -1;        // most probable intent (index into adapter intents)
  int32_t category = -1;      // most probable category (summed over its intents)
  int32_t urgency = 0;        // most probable urgency (summed over intents), 1..3
  float confidence = 0;       // calibrated probability of `category`
  float intent_confidence = 0;
  std::vector<std::pair<int32_t, float>> top_categories;  // best first, up to 3
  bool truncated = false;
  bool out_of_scope = false;  // the most probable intent is the out-of-scope class
  uint32_t prompt_tokens = 0;
};

// Decision from calibrated intent probabilities (softmax(z / T) already).
prediction decide(const adapter& a, std::span<const float> intent_probs);

// The adapter's head on one feature row (a.intent_head.dim() floats taken
// the adapter's way): logits, softmax at its temperature, decide(). The
// caller sets truncated and prompt_tokens.
prediction predict(const adapter& a, const float* features);

// The feature spec an adapter was trained with.
feature_spec spec_of(const adapter& a);

// Name of the out-of-scope intent when an adapter is trained with one.
inline constexpr std::string_view out_of_scope_intent = "out_of_scope";

struct engine_options {
  std::string model;    // GGUF base model
  std::string adapter;  // adapter GGUF
  int threads = 0;      // 0: one per hardware thread
  int batch = 32;       // tickets per forward pass
};

class engine {
 public:
  static result<engine> load(const engine_options& opts);
  std::vector<prediction> classify(std::span<const std::string> texts);
  // The same, and the pooled features (n, dim) the head saw into `features`
  // (shadow mode runs a second head on them).
  std::vector<prediction> classify(std::span<const std::string> texts, std::vector<float>& features);
  // Features (n, dim) of this engine's model taken another way (a second
  // forward pass); truncated/prompt_tokens per text when not null.
  std::vector<float> features(std::span<const std::string> texts, const feature_spec& spec,
                              std::vector<uint8_t>* truncated = nullptr,
                              std::vector<uint32_t>* prompt_tokens = nullptr);
  const feature_spec& spec() const { return spec_; }
  const adapter& adapter_info() const { return *adapter_; }
  const model::model& base() const { return *model_; }
  const tokenizer::tokenizer& tokenizer() const { return *tok_; }
  std::string model_version() const;

 private:
  std::unique_ptr<model::model> model_;
  std::unique_ptr<tokenizer::tokenizer> tok_;
  std::unique_ptr<adapter> adapter_;
  feature_spec spec_;
  int batch_ = 32;
};

}  // namespace triage::classifier
