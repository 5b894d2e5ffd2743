// runner.h: replaying records through the worker's own processor (decode,
// classify, route), in batches like the worker's, at a chosen pace, and
// scoring each output against its record's label.
//
//   workers::processor p(cfg, backend);
//   auto run = replay::run(records, p, backend, {.batch_max_tickets = 32, .speed = 0});
//   auto ev = replay::evaluate(run.scored, run.batch_ms);
//   for (const auto& o : run.outputs) sink.write(o);    // one output per record, in order
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "replay/metrics.h"
#include "replay/source.h"
#include "workers/backend.h"
#include "workers/processor.h"

namespace triage::replay {

struct run_options {
  // Most records per processor call. Default: 32 (the worker's batch_max_tickets). Bounds: >= 1.
  size_t batch_max_tickets = 32;
  // Most estimated prompt tokens per batch, the worker's estimate (bytes / 4 + 1).
  // Default: 8192. Bounds: >= 1.
  int batch_max_tokens = 8192;
  // Pace: 0 as fast as possible; 1 as recorded (record timestamps); N, N times
  // faster than recorded. Records without a timestamp are not delayed.
  // Default: 0. Bounds: >= 0.
  double speed = 0;
  // Show a progress bar with ETA on stderr (base/progress.h). Default: false.
  bool progress = false;
  // Label of the progress bar. Default: "replay".
  std::string label = "replay";
};

struct run_result {
  std::vector<workers::output_record> outputs;  // one per record, in order
  std::vector<scored_ticket> scored;            // one per record, in order
  std::vector<double> batch_ms;                 // classification time of each batch
  double wall_s = 0;
};

run_result run(std::span<const replay_record> records, workers::processor& proc,
               const run_options& options = {});

// Where record i (timestamp ts_ms) should start, in ms after the replay's start,
// for a stream whose first timestamped record has timestamp first_ms: 0 when
// speed is 0 or the record has no timestamp.
double pace_offset_ms(int64_t first_ms, int64_t ts_ms, double speed);

// The label, prediction and outcome of one output (parses its RoutedTicket or
// Escalation for the ticket id and urgency).
scored_ticket score(const replay_record& in, const workers::output_record& out);

}  // namespace triage::replay
