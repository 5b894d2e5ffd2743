// ledger.h: the fault-injection suite's checker. Given every record of the
// input topic and every record read back (read_committed) from the output
// topics, it proves that each input offset is accounted for exactly once:
// routed, escalated or dead-lettered, on the topic and with the category or
// reason that the worker's own processor gives that record with the same
// backend (so a ticket's route depends on nothing but its classification),
// none twice, none missing, no output from nowhere.
//
//   workers::null_backend model(categories);
//   auto v = chaos::check(cfg, model, inputs, outputs);
//   if (!v.ok()) for (auto& p : v.problems) std::cerr << p << "\n";
//   // v.tally: (partition, category, urgency, outcome) -> tickets, to compare
//   // with the state store's counters.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "topology/config.h"
#include "workers/backend.h"

namespace triage::chaos {

// A record of the input topic, as read back.
struct input {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key{};
  std::string value{};
  int64_t timestamp_ms = 0;
  // For a record made malformed on purpose: the dead-letter reason it must
  // get ("bad_json", ...); empty for a ticket.
  std::string injected_reason{};
};

// A record of an output topic (routed, escalations, dead letters).
struct output {
  std::string topic{};
  int32_t partition = 0;
  int64_t offset = 0;
  std::string value{};
};

// (input partition, category, urgency, outcome) -> tickets; dead letters
// count under category "-", urgency 0, as the state store counts them.
using tally = std::map<std::tuple<int32_t, std::string, int, std::string>, int64_t>;

struct verdict {
  uint64_t inputs = 0;
  uint64_t outputs = 0;
  uint64_t routed = 0;
  uint64_t escalated = 0;
  uint64_t dead_lettered = 0;
  std::map<std::string, uint64_t> dead_letter_reasons;  // reason -> records
  uint64_t missing = 0;         // inputs with no output
  uint64_t duplicated = 0;      // inputs with more than one output
  uint64_t unknown_source = 0;  // outputs naming no input record
  uint64_t wrong = 0;           // outputs on another topic or with other contents than expected
  tally counts;                 // of the outputs, one per input (duplicates not counted twice)
  std::vector<std::string> problems;  // the first 20, each naming topic, partition and offset
  bool ok() const { return missing == 0 && duplicated == 0 && unknown_source == 0 && wrong == 0; }
};

// Checks `outputs` against `inputs` (all of the input topic `cfg.topics.tickets`).
verdict check(const topology::config& cfg, workers::backend& model, const std::vector<input>& inputs,
              const std::vector<output>& outputs);

}  // namespace triage::chaos
