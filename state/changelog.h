// changelog.h: the store's changelog topic on Kafka: creating it (compacted,
// partitioned like the input), and restoring partitions of a store from it.
//
//   auto ok = ensure_changelog_topic(cfg.kafka.settings, "tickets.state-changelog",
//                                    /*partitions=*/6, /*replication=*/1);
//   auto r = restore(*store, cfg.kafka.settings, "tickets.state-changelog", {0, 3}, 120000);
//   // r.value().records: changelog records applied
//
// Changelog partition p holds the state of input partition p; its keys are
// "<family>/<store key>" (store keys start with the partition) and its values
// the keys' full values, so compaction keeps exactly the latest state.
// restore() wipes the partitions' state and reads their changelog partitions
// from the beginning to the end, read_committed: only state whose
// transaction committed (with the outputs and the input offsets) comes back.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "state/store.h"

namespace triage::state {

using kafka_settings = std::map<std::string, std::string>;

// Partitions of `topic`; errc::kafka if it does not exist.
result<int> partition_count(const kafka_settings& settings, const std::string& topic,
                            int timeout_ms = 30000);

// Creates `topic` compacted with `partitions` partitions if missing; if it
// exists with fewer partitions than `partitions`, an error (its partition p
// must exist for every input partition p).
result<void> ensure_changelog_topic(const kafka_settings& settings, const std::string& topic,
                                    int partitions, int replication_factor, int timeout_ms = 30000);

struct restore_result {
  int64_t records = 0;                     // changelog records applied
  std::map<int32_t, int64_t> end_offsets;  // per partition: the changelog end read up to
};

// Wipes `partitions` in `s`, then loads them from the changelog. Fails with
// restore_failed if it has not reached the end within timeout_ms (an open
// transaction of another producer holds the end back).
result<restore_result> restore(store& s, const kafka_settings& settings, const std::string& topic,
                               const std::vector<int32_t>& partitions, int timeout_ms);

}  // namespace triage::state
