// config_fuzz.cc: libFuzzer target for the configuration loader
// (topology::parse_config, the YAML behind topology/default.yaml). Any text
// must give a config or a typed error whose message names the source.
//
//   build-fuzz/tests/fuzz/fuzz_config tests/fuzz/corpus/config   (ops/fuzz.sh)
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_check.h"
#include "topology/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto r = triage::topology::parse_config(yaml, "fuzz.yaml");
  if (!r) {
    FUZZ_CHECK(r.error().message.find("fuzz.yaml") != std::string::npos,
               "config error does not name the source");
    return 0;
  }
  const auto& c = r.value();
  FUZZ_CHECK(c.topics.partitions >= 1 && c.topics.partitions <= 10000, "partitions out of bounds");
  FUZZ_CHECK(c.worker.batch_max_tickets >= 1 && c.worker.batch_max_tickets <= 4096,
             "batch_max_tickets out of bounds");
  return 0;
}
