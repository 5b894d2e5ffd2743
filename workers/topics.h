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
// with fewer partitions than the tickets topic is an error naming both, and
// one whose cleanup.policy is not "compact" (e.g. "delete", the broker's
// default for a topic made by hand, or "compact,delete") is an error naming
// the topic, its policy and the kafka-configs command that fixes it: under
// time or size retention the changelog loses keys, and a restore from it
// silently loses state. Nothing is altered on the broker, unless
// `compact_existing` (`triage topics create --compact-changelog`): then its
// cleanup.policy is set to compact (compact_topic).
result<std::string> create_state_changelog(const topology::config& cfg, int timeout_ms = 30000,
                                           bool compact_existing = false);

// Sets the topic's cleanup.policy to compact, keeping its other topic-level
// settings (AlterConfigs replaces them all, so they are sent back as the
// broker reports them). Errors name the topic.
result<void> compact_topic(const topology::config& cfg, const std::string& topic, int timeout_ms = 30000);

// A topic setting as the broker reports it (DescribeConfigs).
result<std::string> topic_config(const topology::config& cfg, const std::string& topic, const std::string& name,
                                 int timeout_ms = 30000);
// The topic's cleanup.policy as the broker reports it.
result<std::string> topic_cleanup_policy(const topology::config& cfg, const std::string& topic,
                                         int timeout_ms = 30000);

// The check create_state_changelog makes on an existing changelog's policy.
result<void> check_changelog_policy(const topology::config& cfg, const std::string& topic,
                                    const std::string& policy);

}  // namespace triage::workers
