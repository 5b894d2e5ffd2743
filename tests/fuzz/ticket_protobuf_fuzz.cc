// ticket_protobuf_fuzz.cc: libFuzzer target for the protobuf ticket decoder
// (schemas::decode_ticket on the wire format, forced and auto-detected). Any
// bytes must give a ticket or a typed error with a message; a valid protobuf
// ticket must decode the same when the format is guessed; a decoded ticket
// must print as JSON (to_json(), which `triage decode` and replay use), and
// that JSON (less unknown fields) and the re-serialized bytes must decode to
// an equal ticket.
//
//   build-fuzz/tests/fuzz/fuzz_ticket_protobuf tests/fuzz/corpus/ticket_protobuf   (ops/fuzz.sh)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include <google/protobuf/util/message_differencer.h>

#include "schemas/codec.h"
#include "tests/fuzz/fuzz_check.h"

namespace schemas = triage::schemas;
using google::protobuf::util::MessageDifferencer;

namespace {

// Both tickets on stderr, for the report of a failed round trip.
bool same(const triage::v1::TicketEvent& a, const triage::v1::TicketEvent& b) {
  if (MessageDifferencer::Equals(a, b)) return true;
  std::fprintf(stderr, "first:  %s\nsecond: %s\n", a.ShortDebugString().c_str(),
               b.ShortDebugString().c_str());
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // What the worker does with a record: auto-detect (JSON only if it starts with '{' or '[').
  auto guessed = schemas::decode_ticket(bytes, {.max_text_bytes = 4096});
  if (!guessed) FUZZ_CHECK(!guessed.error().message.empty(), "decode error without a message");

  auto r = schemas::decode_ticket(bytes, {.format = schemas::wire_format::protobuf, .max_text_bytes = 4096});
  if (!r) {
    FUZZ_CHECK(!r.error().message.empty(), "decode error without a message");
    return 0;
  }
  const triage::v1::TicketEvent& ticket = r.value();
  // A protobuf ticket is never taken for JSON (its first byte may be '\n', a
  // blank to JSON, and its second '{'), unless it starts with '{' or '['
  // itself: an unknown field 15 or 11 sent as a group, which the guess
  // reads as JSON by design (schemas/codec.h).
  if (bytes[0] != '{' && bytes[0] != '[') {
    FUZZ_CHECK(guessed.has_value(), "auto-detect refuses a valid protobuf ticket");
    FUZZ_CHECK(same(ticket, guessed.value()), "auto-detect decodes a protobuf ticket differently");
  }

  auto wire = schemas::decode_ticket(ticket.SerializeAsString(),
                                     {.format = schemas::wire_format::protobuf, .max_text_bytes = 4096});
  FUZZ_CHECK(wire.has_value(), "re-serialized ticket does not decode");
  FUZZ_CHECK(same(ticket, wire.value()), "protobuf round trip changed the ticket");

  // JSON has no place for unknown fields (protobuf keeps them, also inside
  // created_at): the JSON round trip gives the ticket without them.
  auto json = schemas::decode_ticket(schemas::to_json(ticket),
                                     {.format = schemas::wire_format::json, .max_text_bytes = 4096});
  FUZZ_CHECK(json.has_value(), "to_json() output does not decode");
  triage::v1::TicketEvent known = ticket;
  known.DiscardUnknownFields();
  FUZZ_CHECK(same(known, json.value()), "JSON round trip changed the ticket");
  return 0;
}
