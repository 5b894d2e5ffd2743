// ticket_checks.h: what the ticket fuzz targets check: decoding any bytes
// with the size bound the targets share, and that a decoded ticket survives
// the round trips the worker, `triage decode` and replay make (serialized
// and decoded again, to_json() and decoded again), printing both tickets on
// stderr when one changes it.
//
//   auto r = triage::fuzz::decode(bytes, schemas::wire_format::json);
//   if (r) triage::fuzz::check_round_trips(r.value(), schemas::wire_format::auto_detect);
#pragma once

#include <cstdio>
#include <string_view>

#include <google/protobuf/util/message_differencer.h>

#include "schemas/codec.h"
#include "tests/fuzz/fuzz_check.h"

namespace triage::fuzz {

// decode_ticket in `format`, with subject + body bounded to 4096 bytes (the
// fuzzers' inputs are short; a larger bound only slows them down).
inline result<v1::TicketEvent> decode(std::string_view bytes, schemas::wire_format format) {
  return schemas::decode_ticket(bytes, {.format = format, .max_text_bytes = 4096});
}

// Whether a and b are equal; both on stderr when not, for the crash report.
inline bool same(const v1::TicketEvent& a, const v1::TicketEvent& b) {
  if (google::protobuf::util::MessageDifferencer::Equals(a, b)) return true;
  std::fprintf(stderr, "first:  %s\nsecond: %s\n", a.ShortDebugString().c_str(),
               b.ShortDebugString().c_str());
  return false;
}

// Aborts unless `ticket` serialized and decoded in `reserialized_as`
// (protobuf, or auto_detect as the worker guesses), and printed by to_json()
// and decoded as JSON, gives the same ticket. JSON has no place for unknown
// fields (protobuf keeps them, also inside created_at): the JSON round trip
// gives the ticket without them.
inline void check_round_trips(const v1::TicketEvent& ticket, schemas::wire_format reserialized_as) {
  auto wire = decode(ticket.SerializeAsString(), reserialized_as);
  FUZZ_CHECK(wire.has_value(), "re-serialized ticket does not decode");
  FUZZ_CHECK(same(ticket, wire.value()), "protobuf round trip changed the ticket");

  auto json = decode(schemas::to_json(ticket), schemas::wire_format::json);
  FUZZ_CHECK(json.has_value(), "to_json() output does not decode");
  v1::TicketEvent known = ticket;
  known.DiscardUnknownFields();
  FUZZ_CHECK(same(known, json.value()), "JSON round trip changed the ticket");
}

}  // namespace triage::fuzz
