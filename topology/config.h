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
#include <vector>

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

struct routing_options {
  // Lowest calibrated confidence routed without escalation. Negative: use the
  // threshold stored in the adapter (chosen from data for its target
  // accuracy). Default: -1. Bounds: -1, or 0..1.
  double min_confidence = -1;
  // Categories always escalated whatever the confidence (legal, disputes).
  // Default: [disputes].
  std::vector<std::string> always_escalate{"disputes"};
  // Queue per category; a category not listed goes to the queue of its own
  // name. The routed topic is topics.routed_prefix + queue. Default: {}.
  std::map<std::string, std::string> queues = {};
  // Escalate tickets cut to the token budget. Default: false (flagged only).
  bool escalate_truncated = false;
};

enum class delivery_mode { exactly_once, at_least_once };

struct worker_options {
  // Consumer group shared by all workers of a deployment. Default: "triage".
  std::string group_id = "triage";
  // exactly_once: outputs and input offsets in one Kafka transaction.
  // at_least_once: idempotent producer, offsets committed after outputs are
  // acknowledged. Default: exactly_once.
  delivery_mode delivery = delivery_mode::exactly_once;
  // Prefix of the transactional ids; instance i of a worker uses
  // "<prefix>-<worker_id>-<i>", stable across restarts so a restarted worker
  // fences its predecessor. Default: "triage".
  std::string transactional_id_prefix = "triage";
  // Most tickets in one inference batch. Default: 32. Bounds: 1..4096.
  int batch_max_tickets = 32;
  // Most prompt tokens in one batch (the sum over its tickets). Default: 8192.
  // Bounds: 64..1048576.
  int batch_max_tokens = 8192;
  // Longest a ticket waits for its batch to fill. Default: 50 ms. Bounds: 0..60000.
  int batch_max_wait_ms = 50;
  // Longest a graceful shutdown (SIGTERM) may take before the transaction in
  // flight is aborted. Default: 10000 ms. Bounds: 100..600000.
  int shutdown_timeout_ms = 10000;
  // Backpressure: most tickets read from Kafka and waiting for inference (not
  // counting the batch being classified). When the queue reaches this or
  // queue_max_tokens, the worker pauses its partitions; it resumes them once
  // the queue has drained to half of both limits. A pause drops what
  // librdkafka prefetched for the partitions (it fetches again on resume),
  // so keep it well above batch_max_tickets (pipeline_bench, null backend,
  // at-least-once: 1024 gave 71% of a plain pass-through, 4096 gave 140%).
  // Default: 4096. Bounds: 1..1048576.
  int queue_max_tickets = 4096;
  // Most estimated prompt tokens (bytes / 4 + 1 per ticket) waiting in the
  // queue; see queue_max_tickets. Default: 262144. Bounds: 64..67108864.
  int queue_max_tokens = 262144;
  // Largest subject + body accepted before a record is dead-lettered as
  // oversized. Default: 262144. Bounds: 1..67108864.
  int max_text_bytes = 256 * 1024;
  // Consumer instances in one worker process. Partitions spread evenly over
  // the group's instances, so a machine running more instances takes a larger
  // share: 0 sizes it from the backend's measured throughput at start,
  // round(tickets/s / instance_capacity) within 1..max_instances, so fast and
  // slow machines in one group get partitions in proportion to capacity.
  // Default: 1. Bounds: 0..64.
  int instances = 1;
  // Tickets/s that one instance stands for (instances: 0); set it to about
  // the slowest machine's throughput. Default: 20. Bounds: > 0.
  double instance_capacity = 20;
  // Most instances `instances: 0` starts (keep at or below the partition
  // count). Default: 8. Bounds: 1..64.
  int max_instances = 8;
};

// The worker's state store (state/): counters, histograms, escalation-rate
// windows, drift statistics, decisions and retraining examples, kept in
// RocksDB per input partition and mirrored to a compacted changelog topic.
struct state_options {
  // Keep state at all. Off, the worker only routes (no store, no changelog).
  // Default: false (default.yaml turns it on).
  bool enabled = false;
  // Parent directory of the stores; each worker instance uses
  // <directory>/<worker_id>-<instance>. Default: "var/state".
  std::string directory = "var/state";
  // Compacted changelog topic, partitioned like topics.tickets (created with
  // the same partition count if missing). Default: "tickets.state-changelog".
  std::string changelog_topic = "tickets.state-changelog";
  // Keep the ticket text (through the redaction hook) in decisions and
  // retraining examples. Default: false (ids and labels only).
  bool keep_ticket_text = false;
  // Tickets below this confidence become retraining examples (escalated and
  // corrected ones always do). Default: 0.6. Bounds: 0..1.
  double example_max_confidence = 0.6;
  // The first N tickets of each partition form the drift baseline.
  // Default: 1000. Bounds: 1..100000000.
  int baseline_tickets = 1000;
  // Drift alerts: population stability index above which the category,
  // confidence or ticket-length distribution of a quarter is reported as
  // drifted (0.1 moderate, 0.25 significant by the usual rule of thumb).
  // Default: 0.25 each. Bounds: 0..100.
  double psi_category_alert = 0.25;
  double psi_confidence_alert = 0.25;
  double psi_length_alert = 0.25;
  // The same for the per-ticket unknown-token rate (share of a ticket's
  // tokens that are byte fragments; state/drift.h). Default: 0.25.
  // Bounds: 0..100.
  double psi_unknown_alert = 0.25;
  // Escalation rate (escalated / tickets) of a quarter above which an alert
  // is logged. Default: 0.5. Bounds: 0..1.
  double escalation_rate_alert = 0.5;
  // A partition's quarter is judged for drift only once it holds this many
  // tickets beyond the baseline. Default: 500. Bounds: 1..100000000.
  int drift_min_tickets = 500;
  // Longest a restore from the changelog may take. Default: 120000 ms.
  // Bounds: 1000..3600000.
  int restore_timeout_ms = 120000;
  // Memory of each worker instance's RocksDB store: block cache, index and
  // filter blocks and memtables together (state/store.h,
  // store_options::memory_budget_mb). Default: 64. Bounds: 8..65536.
  int memory_budget_mb = 64;
  // Decisions (kept per ticket for the corrections join) are dropped at
  // compaction once their quarter ended more than this many days ago; 0
  // keeps them forever (store_options::decisions_retention_days).
  // Default: 30. Bounds: 0..36500.
  int decisions_retention_days = 30;
};

// The cascade's cost model, as a support team budgets it: what one frontier
// call and one SLM classification cost, at what weekly volume. `triage replay`
// reports weekly spend and savings from it (its flags override).
struct cost_options {
  // Cost of one frontier-model call (an escalated ticket), in any currency.
  // Default: 0.01. Bounds: >= 0.
  double frontier_per_call = 0.01;
  // Cost of classifying one ticket with the SLM (hardware time), same unit.
  // Default: 0.0002. Bounds: >= 0.
  double slm_per_ticket = 0.0002;
  // Tickets per week the estimate is made for. Default: 10000. Bounds: >= 0.
  double weekly_tickets = 10000;
};

// How tickets are classified. head: the adapter's classifier head on the
// model's pooled hidden states. generate: the instruct model writes
// {"category", "urgency"} as JSON, decoding constrained to the taxonomy
// (compute/classifier/generate.h).
enum class classifier_mode { head, generate };

// A LoRA adapter (GGUF, the layout llama.cpp's converter writes) merged
// into the base model at load (compute/model/lora.h).
struct lora_options {
  // Adapter file. Default: "" (required).
  std::string path;
  // Multiplier of its update. Default: 1.0. Bounds: -100..100.
  double scale = 1.0;
};

// mode: generate. Empty strings take compute/classifier/generate.h's defaults.
struct generate_options {
  // Chat template with {system} and {ticket} slots; special-token text in it
  // becomes those tokens, never text inside a ticket. Default: "" (ChatML).
  std::string chat_template;
  // System prompt; {categories} becomes the taxonomy's categories.
  // Default: "" (generate.h's k_default_system_prompt).
  std::string system_prompt;
  // Token budget of the prompt; the ticket is cut to fit and flagged
  // truncated (the output is bounded by the schema). Default: 512. Bounds: 16..32768.
  int max_tokens = 512;
  // Forward passes the category-confidence search may spend. Default: 8. Bounds: 0..256.
  int max_expansions = 8;
  // Temperature and threshold fitted by `triage calibrate-generate` (JSON).
  // Default: "" (uncalibrated: temperature 1, threshold 1, so nothing routes
  // on confidence unless routing.min_confidence sets one).
  std::string calibration;
  // LoRA adapters applied to the base model, in order. Default: [] (none).
  std::vector<lora_options> loras;
};

// Shadow mode (workers/shadow.h): a candidate adapter judges every ticket
// beside the live one (mode: head); its decisions are recorded in the state
// (agreement, accuracy against corrections) and never route.
struct shadow_options {
  // Candidate adapter GGUF (what `triage retrain` writes). Checked when the
  // worker loads its backend: the file must exist and be built for the live
  // adapter's base model and taxonomy. Default: "" (no shadow).
  std::string adapter;
};

struct config {
  // Default: head.
  classifier_mode mode = classifier_mode::head;
  generate_options generate;
  kafka_options kafka;
  topics_options topics;
  routing_options routing;
  worker_options worker;
  state_options state;
  cost_options cost;
  shadow_options shadow;
};

// `source` names the text in errors (a file name).
result<config> parse_config(std::string_view yaml, std::string_view source);
result<config> load_config(const std::string& path);
// load_config(path), then `key=value` Kafka settings on top (the CLIs'
// repeatable --set). One without '=' is bad_value; its message shows only
// the leading key, since the rest may be a secret typed with the wrong
// separator ("sasl.password:...").
result<config> load_config(const std::string& path, const std::vector<std::string>& settings);

}  // namespace triage::topology

template <>
struct std::is_error_code_enum<triage::topology::errc> : std::true_type {};
