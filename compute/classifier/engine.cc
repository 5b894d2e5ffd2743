#include "compute/classifier/engine.h"

#include <algorithm>
#include <filesystem>

namespace triage::classifier {

tokenized_ticket tokenize_ticket(const tokenizer::tokenizer& tok, const feature_spec& spec,
                                 std::string_view text) {
  tokenized_ticket out;
  const auto at = spec.prompt_template.find("{text}");
  const std::string_view tmpl(spec.prompt_template);
  const auto before = at == std::string::npos ? tmpl : tmpl.substr(0, at);
  const auto after = at == std::string::npos ? std::string_view{} : tmpl.substr(at + 6);
  // The template may hold control tokens (a chat format); the ticket text
  // never does: its "<|im_end|>" stays plain text.
  auto head = tok.encode(before, false, true);
  auto body = tok.encode(text, false, false);
  auto tail = tok.encode(after, false, true);
  const auto budget = static_cast<size_t>(std::max<int>(spec.max_tokens, 1));
  const size_t frame = head.size() + tail.size();
  const size_t room = frame < budget ? budget - frame : 0;
  if (body.size() > room) {
    body.resize(room);
    out.truncated = true;
  }
  out.ids = std::move(head);
  out.ids.insert(out.ids.end(), body.begin(), body.end());
  out.ids.insert(out.ids.end(), tail.begin(), tail.end());
  if (out.ids.empty()) out.ids.push_back(tok.eos() >= 0 ? tok.eos() : 0);
  return out;
}

std::vector<float> extract_features(model::model& m, const tokenizer::tokenizer& tok,
                                    const feature_spec& spec, std::span<const std::string> texts,
                                    int batch, const std::function<void(feature_progress)>& progress,
                                    std::vector<uint8_t>* truncated,
                                    std::vector<uint32_t>* prompt_tokens) {
  const int dim = m.cfg().dim;
  std::vector<float> out(texts.size() * static_cast<size_t>(dim));
  if (truncated) truncated->assign(texts.size(), 0);
  if (prompt_tokens) prompt_tokens->assign(texts.size(), 0);
  const model::forward_options fo{
      .layer = spec.layer,
      .pool = spec.pooling == "last" ? model::pooling::last : model::pooling::mean};
  for (size_t start = 0; start < texts.size(); start += static_cast<size_t>(batch)) {
    const size_t end = std::min(texts.size(), start + static_cast<size_t>(batch));
    std::vector<std::vector<int32_t>> seqs;
    for (size_t i = start; i < end; ++i) {
      auto t = tokenize_ticket(tok, spec, texts[i]);
      if (truncated) (*truncated)[i] = t.truncated;
      if (prompt_tokens) (*prompt_tokens)[i] = static_cast<uint32_t>(t.ids.size());
      seqs.push_back(std::move(t.ids));
    }
    const auto r = m.forward(seqs, fo);
    const auto& pooled = spec.pooling == "last" ? r.last : r.mean;
    std::copy(pooled.begin(), pooled.end(), out.begin() + static_cast<ptrdiff_t>(start * dim));
    if (progress) progress({end, texts.size()});
  }
  return out;
}

prediction decide(const adapter& a, std::span<const float> p) {
  prediction out;
  const size_t n = a.intents.size();
  std::vector<float> cat(a.categories.size(), 0.0f);
  float urg[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < n; ++i) {
    cat[a.intent_category[i]] += p[i];
    urg[a.intent_urgency[i]] += p[i];
  }
  out.intent = static_cast<int32_t>(std::max_element(p.begin(), p.begin() + n) - p.begin());
  out.intent_confidence = p[out.intent];
  out.out_of_scope = a.intents[out.intent] == out_of_scope_intent;
  std::vector<int32_t> order(cat.size());
  for (size_t c = 0; c < cat.size(); ++c) order[c] = static_cast<int32_t>(c);
  std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return cat[x] > cat[y]; });
  out.category = order[0];
  out.confidence = cat[order[0]];
  for (size_t k = 0; k < std::min<size_t>(3, order.size()); ++k) {
    out.top_categories.emplace_back(order[k], cat[order[k]]);
  }
  out.urgency = static_cast<int32_t>(std::max_element(urg + 1, urg + 4) - urg);
  return out;
}

result<engine> engine::load(const engine_options& opts) {
  engine e;
  auto a = load_adapter(opts.adapter);
  if (!a) return a.error();
  auto m = model::model::load(opts.model, {.threads = opts.threads});
  if (!m) return m.error();
  const auto fp = model_fingerprint(m.value().gguf());
  if (a.value().base_fingerprint != fp) {
    return make_error(errc::adapter_mismatch,
                      opts.adapter + ": adapter '" + a.value().name + "' was trained on base model '" +
                          a.value().base_model_name + "' (fingerprint " +
                          a.value().base_fingerprint.substr(0, 12) + "), not on " + opts.model +
                          " (fingerprint " + fp.substr(0, 12) + ")");
  }
  if (a.value().intent_head.dim() != m.value().cfg().dim) {
    return make_error(errc::adapter_mismatch,
                      opts.adapter + ": head expects " + std::to_string(a.value().intent_head.dim()) +
                          " features, the model gives " + std::to_string(m.value().cfg().dim));
  }
  auto t = tokenizer::tokenizer::from_gguf(m.value().gguf());
  if (!t) return t.error();
  e.spec_ = {.prompt_template = a.value().prompt_template,
             .max_tokens = a.value().max_tokens,
             .layer = a.value().layer,
             .pooling = a.value().pooling};
  e.model_ = std::make_unique<model::model>(std::move(m.value()));
  e.tok_ = std::make_unique<tokenizer::tokenizer>(std::move(t.value()));
  e.adapter_ = std::make_unique<adapter>(std::move(a.value()));
  e.batch_ = std::max(1, opts.batch);
  return e;
}

std::string engine::model_version() const {
  return std::filesystem::path(model_->gguf().name()).filename().string() + "@" +
         adapter_->base_fingerprint.substr(0, 12);
}

std::vector<prediction> engine::classify(std::span<const std::string> texts) {
  std::vector<float> feats;
  return classify(texts, feats);
}

std::vector<prediction> engine::classify(std::span<const std::string> texts, std::vector<float>& feats) {
  std::vector<uint8_t> truncated;
  std::vector<uint32_t> lengths;
  feats = extract_features(*model_, *tok_, spec_, texts, batch_, {}, &truncated, &lengths);
  const auto& h = adapter_->intent_head;
  std::vector<prediction> out;
  out.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto p = predict(*adapter_, &feats[i * static_cast<size_t>(h.dim())]);
    p.truncated = truncated[i];
    p.prompt_tokens = lengths[i];
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<float> engine::features(std::span<const std::string> texts, const feature_spec& spec,
                                    std::vector<uint8_t>* truncated, std::vector<uint32_t>* prompt_tokens) {
  return extract_features(*model_, *tok_, spec, texts, batch_, {}, truncated, prompt_tokens);
}

prediction predict(const adapter& a, const float* features) {
  const auto& h = a.intent_head;
  std::vector<float> z(static_cast<size_t>(h.n_classes()));
  h.logits(features, z.data());
  softmax(z, a.temperature);
  return decide(a, z);
}

feature_spec spec_of(const adapter& a) {
  return {.prompt_template = a.prompt_template, .max_tokens = a.max_tokens, .layer = a.layer, .pooling = a.pooling};
}

}  // namespace triage::classifier
