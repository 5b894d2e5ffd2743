#include "replay/runner.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "base/progress.h"
#include "schemas/triage.pb.h"

namespace triage::replay {

double pace_offset_ms(int64_t first_ms, int64_t ts_ms, double speed) {
  if (speed <= 0 || ts_ms <= 0 || first_ms <= 0 || ts_ms <= first_ms) return 0;
  return static_cast<double>(ts_ms - first_ms) / speed;
}

scored_ticket score(const replay_record& in, const workers::output_record& out) {
  scored_ticket s;
  s.source = in.record.topic + "/" + std::to_string(in.record.partition) + "/" +
             std::to_string(in.record.offset);
  s.id = s.source;
  s.truth = in.truth;
  s.kind = out.kind;
  s.category = out.category;
  s.confidence = out.confidence;
  s.reason = out.reason;
  if (out.kind == workers::outcome::routed) {
    v1::RoutedTicket rt;
    if (rt.ParseFromString(out.value)) {
      s.id = rt.ticket().id();
      s.urgency = rt.result().urgency();
      s.latency_ms = rt.result().latency().seconds() * 1e3 + rt.result().latency().nanos() / 1e6;
    }
  } else if (out.kind == workers::outcome::escalated) {
    v1::Escalation e;
    if (e.ParseFromString(out.value)) {
      s.id = e.ticket().id();
      s.urgency = e.draft().urgency();
      s.latency_ms = e.draft().latency().seconds() * 1e3 + e.draft().latency().nanos() / 1e6;
    }
  }
  return s;
}

run_result run(std::span<const replay_record> records, workers::processor& proc,
               const run_options& options) {
  using clock = std::chrono::steady_clock;
  run_result res;
  res.outputs.reserve(records.size());
  res.scored.reserve(records.size());
  const auto started = clock::now();
  int64_t first_ms = 0;
  for (const auto& r : records) {
    if (r.record.timestamp_ms > 0) {
      first_ms = r.record.timestamp_ms;
      break;
    }
  }
  std::optional<progress_bar> bar;
  if (options.progress) bar.emplace(options.label, records.size());
  std::vector<workers::input_record> batch;
  size_t i = 0;
  const size_t max_tickets = std::max<size_t>(1, options.batch_max_tickets);
  while (i < records.size()) {
    // The batch's first record sets the pace; the rest ride along as the
    // worker's batch_max_wait would gather them.
    const double at = pace_offset_ms(first_ms, records[i].record.timestamp_ms, options.speed);
    if (at > 0) {
      std::this_thread::sleep_until(started + std::chrono::microseconds(static_cast<int64_t>(at * 1000)));
    }
    batch.clear();
    const size_t begin = i;
    int tokens = 0;
    while (i < records.size() && batch.size() < max_tickets && tokens < options.batch_max_tokens) {
      // With pacing, a record not yet due starts the next batch.
      if (!batch.empty() && options.speed > 0 &&
          pace_offset_ms(first_ms, records[i].record.timestamp_ms, options.speed) > at) {
        break;
      }
      tokens += static_cast<int>(records[i].record.value.size() / 4 + 1);
      batch.push_back(records[i].record);
      ++i;
    }
    auto out = proc.process(batch);
    // The processor stamps each result with its batch's classification time
    // (TriageResult.latency); per ticket, that time over the batch's tickets.
    std::vector<scored_ticket> scored;
    size_t classified = 0;
    double batch_ms = 0;
    for (size_t k = 0; k < out.size(); ++k) {
      scored.push_back(score(records[begin + k], out[k]));
      if (scored.back().kind != workers::outcome::dead_lettered) {
        ++classified;
        batch_ms = scored.back().latency_ms;
      }
    }
    if (classified > 0) res.batch_ms.push_back(batch_ms);
    for (size_t k = 0; k < out.size(); ++k) {
      if (classified > 0) scored[k].latency_ms /= static_cast<double>(classified);
      res.scored.push_back(std::move(scored[k]));
      res.outputs.push_back(std::move(out[k]));
    }
    if (bar && i < records.size()) bar->update(i);
  }
  if (bar) bar->finish();
  res.wall_s = std::chrono::duration<double>(clock::now() - started).count();
  return res;
}

}  // namespace triage::replay
