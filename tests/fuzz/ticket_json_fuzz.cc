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
#include <string_view>

#include "tests/fuzz/ticket_checks.h"

namespace schemas = triage::schemas;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = triage::fuzz::decode(bytes, schemas::wire_format::json);
  if (!r) {
    FUZZ_CHECK(!r.error().message.empty(), "decode error without a message");
    return 0;
  }
  // A ticket decoded from JSON has no unknown fields to lose.
  triage::fuzz::check_round_trips(r.value(), schemas::wire_format::auto_detect);
  return 0;
}
