#include "tests/chaos/ledger.h"

#include <google/protobuf/util/message_differencer.h>

#include <span>

#include "schemas/triage.pb.h"
#include "workers/processor.h"

namespace triage::chaos {
namespace {

using google::protobuf::util::MessageDifferencer;

std::string where(const output& o) {
  return o.topic + "/" + std::to_string(o.partition) + "@" + std::to_string(o.offset);
}

std::string source_name(int32_t partition, int64_t offset) {
  return "input " + std::to_string(partition) + "@" + std::to_string(offset);
}

}  // namespace

verdict check(const topology::config& cfg, workers::backend& model, const std::vector<input>& inputs,
              const std::vector<output>& outputs) {
  verdict v;
  v.inputs = inputs.size();
  v.outputs = outputs.size();
  auto problem = [&v](std::string what) {
    if (v.problems.size() < 20) v.problems.push_back(std::move(what));
  };

  // What the worker's own logic makes of each input, with the same backend.
  std::vector<workers::input_record> records;
  records.reserve(inputs.size());
  for (const auto& in : inputs) {
    records.push_back({.topic = cfg.topics.tickets, .partition = in.partition, .offset = in.offset,
                       .key = in.key, .value = in.value, .timestamp_ms = in.timestamp_ms});
  }
  workers::processor proc(cfg, model);
  std::vector<workers::output_record> expected;
  constexpr size_t chunk = 4096;  // batches the size a worker might classify, not one huge one
  for (size_t at = 0; at < records.size(); at += chunk) {
    auto part = proc.process(std::span(records).subspan(at, std::min(chunk, records.size() - at)));
    for (auto& e : part) expected.push_back(std::move(e));
  }

  std::map<std::pair<int32_t, int64_t>, size_t> index;  // (partition, offset) -> inputs[i]
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!index.emplace(std::make_pair(inputs[i].partition, inputs[i].offset), i).second) {
      problem(source_name(inputs[i].partition, inputs[i].offset) + " listed twice in the inputs");
      ++v.wrong;
    }
    const auto& e = expected[i];
    if (!inputs[i].injected_reason.empty() &&
        (e.kind != workers::outcome::dead_lettered || e.reason != inputs[i].injected_reason)) {
      problem(source_name(inputs[i].partition, inputs[i].offset) + ": injected as " +
              inputs[i].injected_reason + " but the decoder says " +
              (e.kind == workers::outcome::dead_lettered ? e.reason : "it is a ticket"));
      ++v.wrong;
    }
  }
  std::vector<int> seen(inputs.size(), 0);

  for (const auto& o : outputs) {
    v1::SourceOffset src;
    workers::outcome kind;
    std::string category;
    int urgency = 0;
    v1::DeadLetter dl;
    v1::Escalation esc;
    v1::RoutedTicket rt;
    const v1::TicketEvent* ticket = nullptr;
    const v1::TriageResult* result = nullptr;
    if (o.topic == cfg.topics.dead_letter) {
      if (!dl.ParseFromString(o.value)) {
        problem(where(o) + ": not a DeadLetter");
        ++v.wrong;
        continue;
      }
      kind = workers::outcome::dead_lettered;
      src = dl.source();
      category = "-";
    } else if (o.topic == cfg.topics.escalations) {
      if (!esc.ParseFromString(o.value)) {
        problem(where(o) + ": not an Escalation");
        ++v.wrong;
        continue;
      }
      kind = workers::outcome::escalated;
      src = esc.source();
      ticket = &esc.ticket();
      result = &esc.draft();
    } else if (o.topic.starts_with(cfg.topics.routed_prefix)) {
      if (!rt.ParseFromString(o.value)) {
        problem(where(o) + ": not a RoutedTicket");
        ++v.wrong;
        continue;
      }
      kind = workers::outcome::routed;
      src = rt.source();
      ticket = &rt.ticket();
      result = &rt.result();
      if (o.topic != cfg.topics.routed_prefix + rt.queue()) {
        problem(where(o) + ": queue '" + rt.queue() + "' on another queue's topic");
        ++v.wrong;
      }
    } else {
      problem(where(o) + ": not an output topic of the topology");
      ++v.wrong;
      continue;
    }
    if (result) {
      category = result->category();
      urgency = result->urgency();
    }
    auto it = src.topic() == cfg.topics.tickets ? index.find({src.partition(), src.offset()}) : index.end();
    if (it == index.end()) {
      problem(where(o) + ": its source " + src.topic() + " " + std::to_string(src.partition()) + "@" +
              std::to_string(src.offset()) + " is no input record");
      ++v.unknown_source;
      continue;
    }
    const size_t i = it->second;
    const auto& in = inputs[i];
    const auto& e = expected[i];
    if (++seen[i] > 1) {
      problem(where(o) + ": " + source_name(in.partition, in.offset) + " has another output already");
      ++v.duplicated;
      continue;
    }
    bool right = o.topic == e.topic && kind == e.kind;
    std::string why = right ? "" : "on " + o.topic + ", expected " + e.topic;
    if (right && kind == workers::outcome::dead_lettered) {
      if (dl.reason() != e.reason) why = "reason " + dl.reason() + ", expected " + e.reason;
      else if (dl.raw() != in.value) why = "raw bytes differ from the input record";
      else if (dl.key() != in.key) why = "key differs from the input record's";
      ++v.dead_letter_reasons[dl.reason()];
    } else if (right) {
      // The expected output, as the processor made it for this input.
      v1::TicketEvent want_ticket;
      v1::TriageResult want_result;
      if (kind == workers::outcome::escalated) {
        v1::Escalation x;
        x.ParseFromString(e.value);
        want_ticket = x.ticket();
        want_result = x.draft();
        if (esc.reasons_size() != x.reasons_size() || (x.reasons_size() > 0 && esc.reasons(0) != x.reasons(0))) {
          why = "escalation reasons differ";
        }
      } else {
        v1::RoutedTicket x;
        x.ParseFromString(e.value);
        want_ticket = x.ticket();
        want_result = x.result();
      }
      if (!MessageDifferencer::Equals(*ticket, want_ticket)) why = "ticket differs from the input's";
      else if (category != want_result.category() || urgency != want_result.urgency() ||
               result->confidence() != want_result.confidence()) {
        why = "classified " + category + "/" + std::to_string(urgency) + ", expected " +
              want_result.category() + "/" + std::to_string(want_result.urgency());
      }
    }
    if (!why.empty()) {
      problem(where(o) + " for " + source_name(in.partition, in.offset) + ": " + why);
      ++v.wrong;
    }
    switch (kind) {
      case workers::outcome::routed: ++v.routed; break;
      case workers::outcome::escalated: ++v.escalated; break;
      case workers::outcome::dead_lettered: ++v.dead_lettered; break;
    }
    ++v.counts[{in.partition, category, urgency, std::string(workers::outcome_name(kind))}];
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (seen[i] == 0) {
      if (v.missing < 20) problem(source_name(inputs[i].partition, inputs[i].offset) + ": no output");
      ++v.missing;
    }
  }
  return v;
}

}  // namespace triage::chaos
