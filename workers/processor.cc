#include "workers/processor.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "schemas/codec.h"

namespace triage::workers {
namespace {

void set_now(google::protobuf::Timestamp* ts) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  ts->set_seconds(ns / 1000000000);
  ts->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

void set_source(v1::SourceOffset* s, const input_record& r) {
  s->set_topic(r.topic);
  s->set_partition(r.partition);
  s->set_offset(r.offset);
}

std::string_view reason_name(v1::EscalationReason r) {
  switch (r) {
    case v1::ESCALATION_REASON_LOW_CONFIDENCE: return "low_confidence";
    case v1::ESCALATION_REASON_ALWAYS_ESCALATE_CATEGORY: return "always_escalate_category";
    case v1::ESCALATION_REASON_OUT_OF_SCOPE: return "out_of_scope";
    case v1::ESCALATION_REASON_TRUNCATED: return "truncated";
    default: return "unspecified";
  }
}

}  // namespace

std::string_view outcome_name(outcome o) {
  switch (o) {
    case outcome::routed: return "routed";
    case outcome::escalated: return "escalated";
    case outcome::dead_lettered: return "dead_lettered";
  }
  return "unknown";
}

processor::processor(const topology::config& cfg, backend& model)
    : cfg_(cfg), model_(model),
      threshold_(cfg.routing.min_confidence >= 0 ? static_cast<float>(cfg.routing.min_confidence)
                                                 : model.threshold()) {}

std::vector<v1::EscalationReason> processor::escalation_reasons(const decision& d) const {
  return policy_reasons(d.category, d.out_of_scope, d.confidence, d.truncated, threshold_);
}

std::vector<v1::EscalationReason> processor::shadow_escalation_reasons(const shadow_decision& s) const {
  const float threshold =
      cfg_.routing.min_confidence >= 0 ? static_cast<float>(cfg_.routing.min_confidence) : s.threshold;
  return policy_reasons(s.category, s.out_of_scope, s.confidence, s.truncated, threshold);
}

std::vector<v1::EscalationReason> processor::policy_reasons(const std::string& category, bool out_of_scope,
                                                            float confidence, bool truncated, float threshold) const {
  std::vector<v1::EscalationReason> reasons;
  const auto& always = cfg_.routing.always_escalate;
  if (std::find(always.begin(), always.end(), category) != always.end()) {
    reasons.push_back(v1::ESCALATION_REASON_ALWAYS_ESCALATE_CATEGORY);
  }
  if (out_of_scope) reasons.push_back(v1::ESCALATION_REASON_OUT_OF_SCOPE);
  if (confidence < threshold) reasons.push_back(v1::ESCALATION_REASON_LOW_CONFIDENCE);
  if (truncated && cfg_.routing.escalate_truncated) {
    reasons.push_back(v1::ESCALATION_REASON_TRUNCATED);
  }
  return reasons;
}

std::string processor::routed_topic(const std::string& category) const {
  auto it = cfg_.routing.queues.find(category);
  return cfg_.topics.routed_prefix + (it == cfg_.routing.queues.end() ? category : it->second);
}

std::vector<output_record> processor::process(std::span<const input_record> records) {
  std::vector<output_record> out(records.size());
  std::vector<v1::TicketEvent> tickets(records.size());
  std::vector<size_t> ticket_at;  // index into records of each decodable ticket
  const schemas::decode_options decode{
      .max_text_bytes = static_cast<size_t>(cfg_.worker.max_text_bytes)};

  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    auto& o = out[i];
    o.partition = r.partition;
    o.offset = r.offset;
    o.key = r.key;
    auto t = schemas::decode_ticket(r.value, decode);
    if (!t) {
      v1::DeadLetter dl;
      dl.set_raw(r.value);
      dl.set_key(r.key);
      dl.set_reason(std::string(
          schemas::errc_name(static_cast<schemas::errc>(t.error().code.value()))));
      dl.set_detail(t.error().message);
      set_source(dl.mutable_source(), r);
      set_now(dl.mutable_failed_at());
      o.topic = cfg_.topics.dead_letter;
      o.kind = outcome::dead_lettered;
      o.reason = dl.reason();
      o.value = dl.SerializeAsString();
      continue;
    }
    tickets[i] = std::move(t.value());
    if (tickets[i].id().empty()) {
      // Without a producer id, the source coordinates identify the ticket.
      tickets[i].set_id(r.topic + "/" + std::to_string(r.partition) + "/" +
                        std::to_string(r.offset));
    }
    if (o.key.empty()) o.key = tickets[i].id();
    ticket_at.push_back(i);
  }

  std::vector<const v1::TicketEvent*> batch;
  batch.reserve(ticket_at.size());
  for (size_t i : ticket_at) batch.push_back(&tickets[i]);
  const auto started = std::chrono::steady_clock::now();
  const auto decisions = batch.empty() ? std::vector<decision>{} : model_.classify(batch);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  if (decisions.size() != batch.size()) {
    throw std::logic_error("backend " + model_.name() + " returned " +
                           std::to_string(decisions.size()) + " decisions for " +
                           std::to_string(batch.size()) + " tickets");
  }

  for (size_t k = 0; k < ticket_at.size(); ++k) {
    const size_t i = ticket_at[k];
    const auto& d = decisions[k];
    auto& o = out[i];
    v1::TriageResult res;
    res.set_category(d.category);
    res.set_urgency(d.urgency);
    res.set_confidence(d.confidence);
    res.set_intent(d.intent);
    for (const auto& alt : d.alternatives) *res.add_alternatives() = alt;
    res.set_model_version(model_.model_version());
    res.set_adapter_version(model_.adapter_version());
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
    res.mutable_latency()->set_seconds(ns / 1000000000);
    res.mutable_latency()->set_nanos(static_cast<int32_t>(ns % 1000000000));
    res.set_truncated(d.truncated);
    res.set_prompt_tokens(d.prompt_tokens);
    res.set_unknown_tokens(d.unknown_tokens);
    res.set_backend(model_.name());
    o.category = d.category;
    o.confidence = d.confidence;
    if (d.shadow) {
      o.has_shadow = true;
      o.shadow_category = d.shadow->category;
      o.shadow_escalated = !shadow_escalation_reasons(*d.shadow).empty();
    }

    const auto reasons = escalation_reasons(d);
    if (reasons.empty()) {
      v1::RoutedTicket rt;
      *rt.mutable_ticket() = std::move(tickets[i]);
      *rt.mutable_result() = std::move(res);
      auto it = cfg_.routing.queues.find(d.category);
      rt.set_queue(it == cfg_.routing.queues.end() ? d.category : it->second);
      set_source(rt.mutable_source(), records[i]);
      set_now(rt.mutable_routed_at());
      o.topic = routed_topic(d.category);
      o.kind = outcome::routed;
      o.value = rt.SerializeAsString();
    } else {
      v1::Escalation e;
      *e.mutable_ticket() = std::move(tickets[i]);
      *e.mutable_draft() = std::move(res);
      for (auto r : reasons) e.add_reasons(r);
      char detail[160];
      std::snprintf(detail, sizeof detail, "%s: category %s, confidence %.3f (threshold %.3f)",
                    std::string(reason_name(reasons.front())).c_str(), d.category.c_str(),
                    static_cast<double>(d.confidence), static_cast<double>(threshold_));
      e.set_detail(detail);
      set_source(e.mutable_source(), records[i]);
      set_now(e.mutable_escalated_at());
      o.topic = cfg_.topics.escalations;
      o.kind = outcome::escalated;
      o.reason = std::string(reason_name(reasons.front()));
      o.value = e.SerializeAsString();
    }
  }
  return out;
}

}  // namespace triage::workers
