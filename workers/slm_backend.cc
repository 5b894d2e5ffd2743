#include "workers/slm_backend.h"

namespace triage::workers {

result<std::unique_ptr<slm_backend>> slm_backend::load(const classifier::engine_options& opts) {
  auto e = classifier::engine::load(opts);
  if (!e) return e.error();
  return std::unique_ptr<slm_backend>(new slm_backend(std::move(e.value())));
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
  const auto preds = engine_.classify(texts);
  const auto& a = engine_.adapter_info();
  std::vector<decision> out;
  out.reserve(preds.size());
  for (const auto& p : preds) {
    decision d;
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
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace triage::workers
