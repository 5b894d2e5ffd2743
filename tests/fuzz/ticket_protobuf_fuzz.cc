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
#include <string_view>

#include "tests/fuzz/ticket_checks.h"

namespace schemas = triage::schemas;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // What the worker does with a record: auto-detect (JSON only if it starts with '{' or '[').
  auto guessed = triage::fuzz::decode(bytes, schemas::wire_format::auto_detect);
  if (!guessed) FUZZ_CHECK(!guessed.error().message.empty(), "decode error without a message");

  auto r = triage::fuzz::decode(bytes, schemas::wire_format::protobuf);
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
    FUZZ_CHECK(triage::fuzz::same(ticket, guessed.value()),
               "auto-detect decodes a protobuf ticket differently");
  }
  triage::fuzz::check_round_trips(ticket, schemas::wire_format::protobuf);
  return 0;
}
