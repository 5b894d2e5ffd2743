// ticket_json_fuzz.cc: libFuzzer target for the JSON ticket decoder
// (schemas::decode_ticket with wire_format::json), the path every record
// starting with '{' takes in the worker. Any bytes must give a ticket or a
// typed error with a message; a decoded ticket must survive the round trips
// the worker and `triage decode` make: to_json() and back, and the protobuf
// wire format and back, both to an equal message.
//
//   build-fuzz/tests/fuzz/fuzz_ticket_json tests/fuzz/corpus/ticket_json   (ops/fuzz.sh)
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
  const schemas::decode_options json{.format = schemas::wire_format::json, .max_text_bytes = 4096};
  auto r = schemas::decode_ticket(bytes, json);
  if (!r) {
    FUZZ_CHECK(!r.error().message.empty(), "decode error without a message");
    return 0;
  }
  const triage::v1::TicketEvent& ticket = r.value();

  auto again = schemas::decode_ticket(schemas::to_json(ticket), json);
  FUZZ_CHECK(again.has_value(), "to_json() output does not decode");
  FUZZ_CHECK(same(ticket, again.value()), "JSON round trip changed the ticket");

  auto wire = schemas::decode_ticket(ticket.SerializeAsString(),
                                     {.format = schemas::wire_format::auto_detect, .max_text_bytes = 4096});
  FUZZ_CHECK(wire.has_value(), "protobuf encoding of a decoded ticket does not decode");
  FUZZ_CHECK(same(ticket, wire.value()), "protobuf round trip changed the ticket");
  return 0;
}
