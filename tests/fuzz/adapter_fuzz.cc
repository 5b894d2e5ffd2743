// adapter_fuzz.cc: libFuzzer target for the classifier adapter loader
// (classifier::parse_adapter over a GGUF reader from memory, which is what
// load_adapter() does after mapping the file). Any bytes must give an adapter
// or a typed error with a message; an adapter it accepts must be usable:
// its head computes logits for a feature row of its own width, and its
// label tables agree with each other.
//
//   build-fuzz/tests/fuzz/fuzz_adapter tests/fuzz/corpus/adapter   (ops/fuzz.sh)
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "compute/classifier/adapter.h"
#include "compute/classifier/head.h"
#include "compute/gguf/reader.h"
#include "tests/fuzz/fuzz_check.h"

namespace classifier = triage::classifier;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto file = triage::gguf::reader::from_memory(bytes, "fuzz-adapter.gguf");
  if (!file) return 0;  // the GGUF reader has its own target
  auto r = classifier::parse_adapter(file.value());
  if (!r) {
    FUZZ_CHECK(!r.error().message.empty(), "adapter error without a message");
    return 0;
  }
  const classifier::adapter& a = r.value();
  const size_t n = a.intents.size();
  FUZZ_CHECK(n >= 2, "adapter with fewer than two intents");
  FUZZ_CHECK(a.intent_category.size() == n && a.intent_urgency.size() == n, "label tables disagree");
  for (size_t i = 0; i < n; ++i) {
    FUZZ_CHECK(a.intent_category[i] >= 0 && static_cast<size_t>(a.intent_category[i]) < a.categories.size(),
               "intent_category outside the categories");
  }
  const classifier::head& h = a.intent_head;
  FUZZ_CHECK(h.n_classes() == static_cast<int>(n), "head classes differ from the intents");
  FUZZ_CHECK(h.dim() >= 0 && h.hidden() >= 0, "negative head sizes");
  std::vector<float> x(static_cast<size_t>(h.dim()), 0.5f);
  std::vector<float> z(n);
  h.logits(x.data(), z.data());
  classifier::softmax(z, a.temperature);
  return 0;
}
