// kafka_range.h: reading a range of a Kafka topic for replay, and writing
// replay outputs to Kafka under a prefix.
//
//   replay::kafka_range range{.topic = "tickets", .from_ms = t0, .to_ms = t1};
//   auto recs = replay::read_kafka_range(cfg.kafka.settings, range, &taxonomy);
//   auto sink = replay::kafka_sink::create(cfg, {.prefix = "replay."});
//   sink.value()->write(run.outputs);
//
// The reader uses assign() with explicit start offsets (from the offsets given,
// or from offsetsForTimes for a time range) under a throwaway group id with
// auto-commit off and never calls commit: the live consumer group's offsets are
// never read or touched. A time range [from_ms, to_ms) reads, per partition,
// from the first offset whose timestamp is >= from_ms to (not including) the
// first offset whose timestamp is >= to_ms, and keeps the records whose
// timestamps fall inside the range (a producer's out-of-order CreateTime
// records past that end offset are not read). An offset range [from, to) is
// clamped to the partition's low and high watermarks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "replay/source.h"
#include "topology/config.h"
#include "workers/processor.h"

namespace triage::replay {

struct kafka_range {
  // Topic to read. Default: "" (required).
  std::string topic;
  // Partitions to read. Default: {} (all of the topic's partitions).
  std::vector<int32_t> partitions;
  // Offset range [from_offset, to_offset) per partition. Default: unset
  // (from the low watermark, to the high watermark at the time of the call).
  std::optional<int64_t> from_offset, to_offset;
  // Timestamp range [from_ms, to_ms), ms since the epoch; overrides the
  // offsets where set. Default: unset.
  std::optional<int64_t> from_ms, to_ms;
  // Longest the whole read may take. Default: 60000 ms. Bounds: >= 1.
  int timeout_ms = 60000;
};

// The records in range, partition by partition in offset order, with labels
// from their tickets' attributes (source.h) where they decode.
result<std::vector<replay_record>> read_kafka_range(const std::map<std::string, std::string>& settings,
                                                    const kafka_range& range,
                                                    const classifier::taxonomy* taxonomy = nullptr);

// Parses "1700000000000" (ms since the epoch) or an RFC 3339 UTC time
// ("2026-11-24T10:00:00Z", fractional seconds allowed).
result<int64_t> parse_time_ms(std::string_view text);

struct sink_options {
  // Prepended to every output topic (tickets.routed.cards -> replay.tickets.routed.cards).
  // Default: "replay.".
  std::string prefix = "replay.";
  // Allow writing to the topology's live topics (an empty prefix, or a prefix
  // that maps an output onto a live topic name). Default: false.
  bool allow_live_topics = false;
};

class kafka_sink {
 public:
  // Refuses (errc::live_topic) a prefix that would write to the topology's live topics.
  static result<std::unique_ptr<kafka_sink>> create(const topology::config& cfg, const sink_options& options);
  ~kafka_sink();
  kafka_sink(const kafka_sink&) = delete;
  kafka_sink& operator=(const kafka_sink&) = delete;
  // Produces each output to prefix + its topic and waits for the acknowledgements.
  result<size_t> write(std::span<const workers::output_record> outputs, int timeout_ms = 30000);

 private:
  struct impl;
  explicit kafka_sink(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

// Whether `topic` is one of the topology's live topics (tickets, escalations,
// dead letters, corrections, or under the routed prefix).
bool is_live_topic(const topology::config& cfg, const std::string& topic);

}  // namespace triage::replay
