// updater.h: turns a batch of the worker's decisions into state changes: the
// local RocksDB writes, and the changelog records (absolute values) that go
// into the same Kafka transaction as the batch's outputs.
//
//   updater u(store, {.keep_ticket_text = false});
//   auto up = u.prepare(facts, {{3, 1045}});      // next input offset per partition
//   for (auto& r : up.value().changelog) producer.produce(changelog_topic, r.partition, r.key, r.value);
//   commit_transaction();
//   u.apply(up.value());                          // only after the commit
//
// Writing the store only after the transaction commits keeps the local store
// at or behind what the changelog holds: a batch whose transaction aborts
// never touches it, and a crash between commit and apply leaves the store's
// applied offset behind the committed one, which restore() detects.
//
// Per ticket: counters[quarter, category, urgency, outcome] += 1; the
// confidence decile of (quarter, category) += 1; the hour bucket's tickets
// (and escalated, dead-lettered) += 1; drift statistics (category,
// confidence decile, length in tokens, unknown-token rate) go to the partition's baseline while
// it holds fewer than baseline_tickets tickets, then to the ticket's quarter;
// the decision is stored by ticket id (for corrections); escalated and
// low-confidence tickets become retraining examples. With a shadow verdict:
// accuracy[quarter, category, "shadow"] += [1, same category, same route
// (both routed or both escalated), shadow escalated, live escalated], and
// the decision
// keeps the shadow category.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "schemas/triage.pb.h"
#include "state/store.h"

namespace triage::state {

// What the worker decided about one input record.
struct ticket_fact {
  int32_t partition = 0;       // of the input record
  int64_t offset = 0;
  int64_t timestamp_ms = 0;    // the input record's timestamp: quarter and hour
  std::string ticket_id;       // empty for dead letters
  std::string outcome;         // "routed", "escalated" or "dead_lettered"
  std::string category;        // empty for dead letters
  int urgency = 0;
  float confidence = 0;
  std::string reason;          // escalation or dead-letter reason
  uint32_t tokens = 0;         // prompt tokens
  uint32_t unknown_tokens = 0; // of them, byte fragments / unknown tokens (drift.h)
  std::string text;            // subject and body; kept only with keep_ticket_text
  // Shadow mode (workers/shadow.h): the candidate adapter's category and
  // whether the routing policy would have escalated it. Never routed on.
  bool has_shadow = false;
  std::string shadow_category;
  bool shadow_escalated = false;
};

// Masks what looks like account or card numbers (runs of 4+ digits become
// '#') and e-mail addresses, and flattens tabs and newlines to spaces.
std::string redact_default(std::string_view text);

struct updater_options {
  // Keep ticket text in decisions and examples (through `redact`).
  // Default: false.
  bool keep_ticket_text = false;
  // Tickets below this confidence become retraining examples. Default: 0.6.
  double example_max_confidence = 0.6;
  // Tickets per partition in the drift baseline. Default: 1000.
  int64_t baseline_tickets = 1000;
  // Applied to ticket text before it is stored. Default: redact_default.
  std::function<std::string(std::string_view)> redact = redact_default;
};

// One record for the changelog topic: partition = the input partition, key =
// "<family>/<store key>", value = the key's full value (nullopt: deleted).
struct changelog_record {
  int32_t partition = 0;
  std::string key;
  std::optional<std::string> value;
};
std::string changelog_key(family f, std::string_view store_key);
// {family, store key}; invalid_argument for a key the store did not write.
result<std::pair<family, std::string>> parse_changelog_key(std::string_view key);

struct update {
  write_set local;
  std::vector<changelog_record> changelog;
  // The additive keys' values after the update ("<family byte><key>").
  std::vector<std::pair<std::string, counts>> totals;
};

// A stored decision (decisions family).
struct decision_record {
  std::string quarter;
  std::string category;
  int urgency = 0;
  float confidence = 0;
  std::string outcome;
  std::string text;  // empty unless keep_ticket_text
  std::string shadow_category;  // empty without shadow mode
};
std::string encode_decision(const decision_record& d);
result<decision_record> decode_decision(std::string_view value);

class updater {
 public:
  updater(store& s, updater_options opts);

  // The changes of one batch. `next_offsets`: per input partition, the next
  // offset after the batch (stored as meta <p>|applied).
  result<update> prepare(std::span<const ticket_fact> facts,
                         const std::map<int32_t, int64_t>& next_offsets);
  // Writes the local part; call after the changelog records are committed.
  result<void> apply(const update& u);
  // Drops the cache of current values; call after the store was changed
  // behind the updater's back (a restore).
  void forget();

 private:
  result<counts> current(family f, const std::string& key);

  store& store_;
  updater_options opts_;
  // Current values of additive keys, so that prepare() need not read them:
  // a read would have to combine every merge operand written since the
  // last compaction. Holds exactly what apply() wrote.
  std::unordered_map<std::string, counts> cache_;
};

// Joins a correction to the stored decision of its ticket: accuracy
// [corrections, agreed] of the decision's (quarter, category) += 1 (when the
// decision has a shadow category: [1, agreed, 1, shadow agreed, agreed], the
// last three over the shadowed tickets only), and the
// ticket joins the retraining examples with the corrected label. Returns
// false (and changes nothing) when no decision for the ticket is stored.
// The changes go into `w`, so the caller writes them with its own offsets.
result<bool> join_correction(const store& s, const v1::Correction& c, write_set& w);

}  // namespace triage::state
