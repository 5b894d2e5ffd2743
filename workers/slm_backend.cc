#include "workers/slm_backend.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "compute/classifier/head.h"
#include "workers/shadow.h"
#include "workers/unknown_tokens.h"

namespace triage::workers {

result<std::unique_ptr<slm_backend>> slm_backend::load(const classifier::engine_options& opts) {
  auto e = classifier::engine::load(opts);
  if (!e) return e.error();
  std::unique_ptr<slm_backend> b(new slm_backend(std::move(e.value())));
  b->adapter_path_ = opts.adapter;
  return b;
}

result<std::unique_ptr<slm_backend>> slm_backend::load_vulkan(
    const classifier::engine_options& opts, const vulkan::vk_model_options& device_opts) {
  // The CPU engine stays loaded: it checks the adapter against the model,
  // and serves a batch if the device fails (its weights are a file mapping).
  auto e = classifier::engine::load(opts);
  if (!e) return e.error();
  auto tok = tokenizer::tokenizer::from_gguf(e.value().base().gguf());
  if (!tok) return tok.error();
  auto gpu = vulkan::vk_model::load(opts.model, device_opts);
  if (!gpu) return gpu.error();
  std::unique_ptr<slm_backend> b(new slm_backend(std::move(e.value())));
  b->adapter_path_ = opts.adapter;
  b->gpu_ = std::make_unique<vulkan::vk_model>(std::move(gpu.value()));
  b->tok_ = std::make_unique<tokenizer::tokenizer>(std::move(tok.value()));
  spdlog::info("slm backend: features on Vulkan device '{}' ({} MB of weights)",
               b->gpu_->device().name, b->gpu_->weight_bytes() >> 20);
  return b;
}

result<void> slm_backend::set_shadow(const std::string& path) {
  auto a = load_shadow_adapter(path, engine_.adapter_info(), adapter_path_);
  if (!a) return a.error();
  shadow_same_features_ = same_features(engine_.adapter_info(), a.value());
  shadow_ = std::move(a.value());
  shadow_path_ = path;
  spdlog::info("slm backend: shadow adapter {} ('{}'), {}", path, shadow_->name,
               shadow_same_features_ ? "its head on the live features"
                                     : "its own feature extraction (a second forward pass per batch, on the CPU)");
  return success();
}

result<std::vector<classifier::prediction>> slm_backend::classify_on_device(
    std::span<const std::string> texts, std::vector<float>& features) {
  const classifier::adapter& a = engine_.adapter_info();
  const classifier::feature_spec spec{.prompt_template = a.prompt_template,
                                      .max_tokens = a.max_tokens,
                                      .layer = a.layer,
                                      .pooling = a.pooling};
  std::vector<std::vector<int32_t>> seqs;
  std::vector<classifier::tokenized_ticket> tickets;
  seqs.reserve(texts.size());
  for (const auto& text : texts) {
    tickets.push_back(classifier::tokenize_ticket(*tok_, spec, text));
    seqs.push_back(tickets.back().ids);
  }
  const bool last = spec.pooling == "last";
  auto r = gpu_->forward(seqs, {.layer = spec.layer,
                                .pool = last ? model::pooling::last : model::pooling::mean});
  if (!r) return r.error();
  const auto& h = a.intent_head;
  const auto dim = static_cast<size_t>(h.dim());
  std::vector<classifier::prediction> out;
  out.reserve(texts.size());
  features.assign(texts.size() * dim, 0.0f);
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto row = last ? r.value().last_of(static_cast<int64_t>(i))
                          : r.value().mean_of(static_cast<int64_t>(i));
    std::copy(row.begin(), row.begin() + static_cast<ptrdiff_t>(std::min(dim, row.size())),
              features.begin() + static_cast<ptrdiff_t>(i * dim));
    auto p = classifier::predict(a, &features[i * dim]);
    p.truncated = tickets[i].truncated;
    p.prompt_tokens = static_cast<uint32_t>(tickets[i].ids.size());
    out.push_back(std::move(p));
  }
  return out;
}

std::string slm_backend::adapter_version() const {
  const auto& a = engine_.adapter_info();
  return a.name + "@" + a.taxonomy_sha256.substr(0, 12);
}

int slm_backend::estimate_tokens(const v1::TicketEvent& ticket) const {
  return static_cast<int>((ticket.subject().size() + ticket.body().size()) / 4 + 1);
}

std::vector<decision> slm_backend::classify(std::span<const v1::TicketEvent* const> tickets) {
  std::vector<std::string> texts;
  texts.reserve(tickets.size());
  for (const auto* t : tickets) {
    // Subject and body as one text, the way the adapter was trained on
    // single-text tickets.
    texts.push_back(t->subject().empty() ? t->body()
                    : t->body().empty()  ? t->subject()
                                         : t->subject() + "\n" + t->body());
  }
  std::vector<classifier::prediction> preds;
  std::vector<float> features;  // (n, dim) the live head saw
  if (gpu_) {
    auto r = classify_on_device(texts, features);
    if (r) {
      preds = std::move(r.value());
    } else {
      spdlog::error("slm backend: Vulkan forward pass failed, this batch runs on the CPU: {}",
                    r.error().message);
    }
  }
  if (preds.empty()) preds = engine_.classify(texts, features);
  const auto& a = engine_.adapter_info();
  // Shadow mode: the candidate's head, on the live features when it takes
  // them the same way, else on its own (a second pass).
  std::vector<classifier::prediction> shadow_preds;
  if (shadow_) {
    const auto dim = static_cast<size_t>(shadow_->intent_head.dim());
    std::vector<float> own;
    std::vector<uint8_t> truncated;
    std::vector<uint32_t> lengths;
    if (!shadow_same_features_) own = engine_.features(texts, classifier::spec_of(*shadow_), &truncated, &lengths);
    const auto& feats = shadow_same_features_ ? features : own;
    shadow_preds.reserve(preds.size());
    for (size_t i = 0; i < preds.size(); ++i) {
      auto p = classifier::predict(*shadow_, &feats[i * dim]);
      p.truncated = shadow_same_features_ ? preds[i].truncated : truncated[i] != 0;
      shadow_preds.push_back(std::move(p));
    }
  }
  std::vector<decision> out;
  out.reserve(preds.size());
  std::vector<int32_t> ids;
  for (size_t i = 0; i < preds.size(); ++i) {
    const auto& p = preds[i];
    decision d;
    // The ticket text's tokens alone (the prompt template's are all known);
    // a second tokenization, a few microseconds against the forward pass.
    ids.clear();
    engine_.tokenizer().encode(texts[i], ids);
    d.unknown_tokens = count_unknown_tokens(engine_.tokenizer(), ids);
    d.category = a.categories[p.category];
    d.urgency = p.urgency;
    d.confidence = p.confidence;
    d.intent = a.intents[p.intent];
    d.truncated = p.truncated;
    d.out_of_scope = p.out_of_scope;
    d.prompt_tokens = p.prompt_tokens;
    for (size_t k = 1; k < p.top_categories.size(); ++k) {
      v1::Alternative alt;
      alt.set_category(a.categories[p.top_categories[k].first]);
      alt.set_probability(p.top_categories[k].second);
      d.alternatives.push_back(std::move(alt));
    }
    if (!shadow_preds.empty()) {
      const auto& s = shadow_preds[i];
      d.shadow = shadow_decision{.category = shadow_->categories[s.category],
                                 .urgency = s.urgency,
                                 .confidence = s.confidence,
                                 .out_of_scope = s.out_of_scope,
                                 .truncated = s.truncated,
                                 .threshold = shadow_->threshold};
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace triage::workers
