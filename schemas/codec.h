// codec.h: decoding ticket records from Kafka, and the JSON mapping.
//
//   triage::schemas::decode_options opts;                // defaults below
//   auto r = triage::schemas::decode_ticket(value, opts);
//   if (!r) dead_letter(value, errc_name(r.error().code), r.error().message);
//   else    classify(r.value());
//
// A record is protobuf (TicketEvent) or JSON (its proto3 JSON mapping); by
// default the first non-blank byte decides: '{' or '[' means JSON. No valid
// protobuf TicketEvent starts with either (they would be fields 15 and 11 with
// wire type 3, a group); but blanks are skipped first, and '\n' is also the
// tag of field 1, so a record that looks like JSON only after blanks and is
// not JSON is read as protobuf. Every failure is a typed error
// whose message says what is wrong and where (field, byte offset).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

#include <google/protobuf/message.h>

#include "base/result.h"
#include "schemas/triage.pb.h"

namespace triage::schemas {

enum class errc {
  empty_record = 1,  // no bytes (or a tombstone)
  bad_protobuf,      // not a valid TicketEvent in the protobuf wire format
  bad_json,          // not JSON, or JSON that does not map onto TicketEvent
  missing_body,      // neither subject nor body has any text
  invalid_utf8,      // a text field is not valid UTF-8
  oversized_text,    // subject + body longer than decode_options::max_text_bytes
};

const std::error_category& schemas_category();
inline std::error_code make_error_code(errc e) { return {static_cast<int>(e), schemas_category()}; }
// "bad_json", ...: the stable name that dead letters carry as their reason.
std::string_view errc_name(errc e);

enum class wire_format { auto_detect, protobuf, json };

struct decode_options {
  // Which encoding records use. Default: auto_detect (JSON if the first
  // non-blank byte is '{' or '[', else protobuf).
  wire_format format = wire_format::auto_detect;
  // Largest subject + body, in bytes, accepted before the ticket is refused as
  // oversized. The classifier truncates to its token budget anyway; this bound
  // keeps a hostile or broken producer from feeding megabytes to the tokenizer.
  // Default: 262144 (256 KiB). Bounds: > 0.
  std::size_t max_text_bytes = 256 * 1024;
};

result<v1::TicketEvent> decode_ticket(std::string_view bytes, const decode_options& options = {});

// Canonical proto3 JSON for any of our messages, field names as in the .proto
// (snake_case), one line. Throws std::runtime_error only if protobuf cannot
// serialize the message (it can always serialize a valid message).
std::string to_json(const google::protobuf::Message& message);

}  // namespace triage::schemas

template <>
struct std::is_error_code_enum<triage::schemas::errc> : std::true_type {};
