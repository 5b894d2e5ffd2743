// source.h: replay inputs read from files, with the expected labels where the
// file has them. Each record becomes a workers::input_record whose value is
// exactly what a producer would have published, so the worker's processor
// decodes it the way it decodes Kafka records.
//
//   auto tax = classifier::load_taxonomy("data/banking77/taxonomy.csv");
//   auto recs = replay::read_file_source("tickets.jsonl", {.taxonomy = &tax.value()});
//   if (!recs) { std::cerr << recs.error().message << "\n"; return 2; }   // names file and line
//   for (const auto& r : recs.value()) use(r.record, r.truth);
//
// Formats (chosen by extension, or forced):
//   .csv    header row; text column `text` (or `body`), optional `subject`, `id`,
//           `tenant`; labels from `category`, `urgency`, `intent` (an intent maps to
//           category and urgency through the taxonomy). Each row becomes a protobuf
//           TicketEvent. offset = the row's 1-based line number.
//   .jsonl  one TicketEvent in its proto3 JSON mapping per line, passed on as is
//           (the decoder ignores the label fields). Labels: a top-level `label`
//           (a category string, or {category, urgency, intent}), or attributes
//           `label_category`, `label_urgency`, `dataset_intent`. Blank lines are
//           skipped. offset = the 1-based line number.
//   .pb     length-delimited protobuf: varint length, then that many bytes of a
//           TicketEvent, repeated. Labels from the attributes as for JSONL.
//           offset = the byte offset of the record's length prefix.
//
// Malformed input, the policy: what breaks the file's framing (CSV quoting or
// a row with the wrong number of fields, a protobuf length prefix that is not a
// varint or runs past the end of the file, a label that names no category of
// the taxonomy) is an error naming the file and line or byte offset, and nothing
// is replayed. A record whose framing is fine but whose content does not decode
// (a JSONL line that is not JSON, a protobuf record that is not a TicketEvent, a
// ticket with no text) is replayed as is and goes to the dead-letter output, as
// the worker would send it to the DLQ, with the line or offset as its source.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "compute/classifier/taxonomy.h"
#include "replay/errc.h"
#include "schemas/triage.pb.h"
#include "workers/processor.h"

namespace triage::replay {

// The category label of tickets that belong to no category of the taxonomy.
inline constexpr std::string_view out_of_scope_label = "out_of_scope";

// What a ticket should have been classified as. Empty category: unlabelled.
struct label {
  std::string category;  // a taxonomy category, or "out_of_scope"
  int urgency = 0;       // 1..3; 0: not labelled
  std::string intent;    // when the label came as an intent

  bool has_category() const { return !category.empty(); }
  bool out_of_scope() const { return category == out_of_scope_label; }
};

struct replay_record {
  workers::input_record record;
  label truth;
};

enum class file_format { auto_detect, csv, jsonl, protobuf };

struct file_source_options {
  // Default: auto_detect (by extension: .csv, .jsonl/.json/.ndjson, .pb/.bin).
  file_format format = file_format::auto_detect;
  // Maps intent labels to category and urgency, and validates category labels
  // (an unknown category is an error naming the line). Default: nullptr (labels
  // are taken as written; intents without a category stay unlabelled).
  const classifier::taxonomy* taxonomy = nullptr;
};

result<file_format> parse_file_format(std::string_view name);

result<std::vector<replay_record>> read_file_source(const std::string& path,
                                                    const file_source_options& options = {});

// The parsers on text already in memory; `source` names it in errors and is the
// records' topic.
result<std::vector<replay_record>> parse_csv_source(std::string_view text, std::string_view source,
                                                    const file_source_options& options = {});
result<std::vector<replay_record>> parse_jsonl_source(std::string_view text, std::string_view source,
                                                      const file_source_options& options = {});
result<std::vector<replay_record>> parse_delimited_source(std::string_view bytes,
                                                          std::string_view source,
                                                          const file_source_options& options = {});

// Labels carried by a ticket's attributes (label_category, label_urgency,
// dataset_intent), resolved through the taxonomy when one is given. `where`
// names the record in errors.
result<label> label_from_attributes(const v1::TicketEvent& ticket,
                                    const classifier::taxonomy* taxonomy, std::string_view where);

// Appends a varint length and the bytes: the framing parse_delimited_source reads.
void append_delimited(std::string& out, std::string_view message);

}  // namespace triage::replay
