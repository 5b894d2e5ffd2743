// processor.h: the worker's logic without Kafka: decode each record, classify
// the tickets, apply the routing policy, and say what to produce where. The
// Kafka loop (worker.h) and replay both drive it; tests drive it directly,
// the way Kafka Streams' TopologyTestDriver tests a topology without a broker.
//
//   processor p(cfg, backend);
//   auto out = p.process(records);          // exactly one output per input record
//   for (auto& o : out) producer.produce(o.topic, o.key, o.value);
//
// Nothing is dropped: a record that does not decode becomes a DeadLetter on
// the dead-letter topic with the reason and its source coordinates.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "topology/config.h"
#include "workers/backend.h"

namespace triage::workers {

// A record as consumed.
struct input_record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  int64_t timestamp_ms = 0;  // the record's timestamp (producer or broker time)
};

enum class outcome { routed, escalated, dead_lettered };

// What to produce for one input record.
struct output_record {
  std::string topic;
  std::string key;
  std::string value;          // serialized RoutedTicket, Escalation or DeadLetter
  outcome kind = outcome::routed;
  std::string category;       // routed/escalated: the SLM's category
  std::string reason;         // escalated/dead-lettered: why
  float confidence = 0;
  int32_t partition = 0;      // of the input record
  int64_t offset = 0;         // of the input record
  // Shadow mode (workers/shadow.h): the candidate's category and whether the
  // same routing policy would have escalated it; recorded only, the output
  // above is the live adapter's alone.
  bool has_shadow = false;
  std::string shadow_category;
  bool shadow_escalated = false;
};

class processor {
 public:
  processor(const topology::config& cfg, backend& model);

  // One output per input, in input order.
  std::vector<output_record> process(std::span<const input_record> records);

  // The routing policy on its own: reasons to escalate, the deciding one first;
  // empty means route to the category's queue.
  std::vector<v1::EscalationReason> escalation_reasons(const decision& d) const;
  // The same policy on a shadow decision, at routing.min_confidence or else
  // the candidate adapter's own threshold.
  std::vector<v1::EscalationReason> shadow_escalation_reasons(const shadow_decision& s) const;
  std::string routed_topic(const std::string& category) const;
  float threshold() const { return threshold_; }

 private:
  std::vector<v1::EscalationReason> policy_reasons(const std::string& category, bool out_of_scope, float confidence,
                                                   bool truncated, float threshold) const;

  const topology::config& cfg_;
  backend& model_;
  float threshold_;
};

std::string_view outcome_name(outcome o);

}  // namespace triage::workers
