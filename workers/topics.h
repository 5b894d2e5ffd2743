// topics.h: provisioning the topics a topology needs (Admin API).
//
//   auto names = topic_names(cfg, {"cards", "payments"});   // all output + input topics
//   auto ok = create_topics(cfg, names);                     // existing ones are kept
//   auto changelog = create_state_changelog(cfg);            // "" when state is off
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "topology/config.h"

namespace triage::workers {

// tickets, escalations, dead letters, corrections, and one routed topic per
// queue of `categories` (through routing.queues).
std::vector<std::string> topic_names(const topology::config& cfg,
                                     const std::vector<std::string>& categories);

// Creates the missing ones with topics.partitions and topics.replication_factor;
// an existing topic is left as it is. Errors name the topic.
result<void> create_topics(const topology::config& cfg, const std::vector<std::string>& names,
                           int timeout_ms = 30000);

// When state.enabled: the state changelog topic (state.changelog_topic),
// compacted (cleanup.policy=compact), with as many partitions as the tickets
// topic has on the broker (which must exist: create the topics first).
// Returns its name, "" when state is off. An existing changelog is kept; one
// with fewer partitions than the tickets topic is an error naming both.
result<std::string> create_state_changelog(const topology::config& cfg, int timeout_ms = 30000);

}  // namespace triage::workers
