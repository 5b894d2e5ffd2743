// config.h: the deployment's configuration (topics, Kafka client settings),
// loaded from a YAML file under topology/ and validated at load.
//
//   auto cfg = triage::topology::load_config("topology/default.yaml");
//   if (!cfg) { std::cerr << cfg.error().message << "\n"; return 2; }
//   consume(cfg.value().topics.tickets);
//
// Every key maps onto a field of an options struct below; an unknown key, a
// value of the wrong type or out of bounds is an error naming the file, line
// and key ("topology/default.yaml:7: topics.partitions: must be 1..10000, got 0").
// The routing policy and prompt templates join this file with the classifier.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <system_error>

#include "base/result.h"

namespace triage::topology {

enum class errc {
  unreadable = 1,  // the file cannot be read
  bad_yaml,        // not YAML
  unknown_key,     // a key no options struct has
  bad_value,       // wrong type or out of bounds
};
const std::error_category& topology_category();
inline std::error_code make_error_code(errc e) { return {static_cast<int>(e), topology_category()}; }

struct topics_options {
  // Input topic producers publish TicketEvents to. Default: "tickets".
  std::string tickets = "tickets";
  // Frontier-processing topic for escalations. Default: "tickets.escalations".
  std::string escalations = "tickets.escalations";
  // Dead letters: undecodable records with the reason. Default: "tickets.dlq".
  std::string dead_letter = "tickets.dlq";
  // Routed tickets go to <routed_prefix><queue>. Default: "tickets.routed.".
  std::string routed_prefix = "tickets.routed.";
  // Agents' corrections. Default: "tickets.corrections".
  std::string corrections = "tickets.corrections";
  // Partitions per topic that `triage topics create` makes. Default: 6. Bounds: 1..10000.
  int partitions = 6;
  // Replicas per partition. Default: 1 (a single development broker). Bounds: 1..16.
  int replication_factor = 1;
};

struct kafka_options {
  // librdkafka settings passed through untouched (bootstrap.servers,
  // security.protocol, sasl.*, ssl.*, ...). Default: bootstrap.servers=127.0.0.1:9092.
  std::map<std::string, std::string> settings{{"bootstrap.servers", "127.0.0.1:9092"}};
};

struct config {
  kafka_options kafka;
  topics_options topics;
};

// `source` names the text in errors (a file name).
result<config> parse_config(std::string_view yaml, std::string_view source);
result<config> load_config(const std::string& path);

}  // namespace triage::topology

template <>
struct std::is_error_code_enum<triage::topology::errc> : std::true_type {};
