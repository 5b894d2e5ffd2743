// gguf_fuzz.cc: libFuzzer target for the GGUF reader (gguf::reader, from
// memory; open() maps a file and hands the same bytes to the same parser).
// The reader promises that a malformed file gives an error naming the file
// and never crashes it; once it has accepted a file, every accessor must
// stay inside the bytes: so this walks all metadata (scalars, strings,
// arrays and nested arrays through at()), all tensors (first and last data
// byte), the typed getters, and builds a tokenizer from the metadata, as
// loading a model does.
//
//   build-fuzz/tests/fuzz/fuzz_gguf tests/fuzz/corpus/gguf   (ops/fuzz.sh)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

#include "compute/gguf/reader.h"
#include "compute/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

namespace gguf = triage::gguf;

namespace {

volatile uint64_t g_sink;  // keeps the reads below from being optimised away

void touch(std::string_view s) {
  if (!s.empty()) g_sink = g_sink + static_cast<unsigned char>(s.front()) + static_cast<unsigned char>(s.back());
}

// Reads every part of a value the reader has validated; arrays through at()
// (at most `budget` elements in all, nested arrays included).
void walk(const gguf::value_view& v, int depth, uint64_t& budget) {
  switch (v.type()) {
    case gguf::value_type::string: touch(*v.as<std::string_view>()); break;
    case gguf::value_type::u8: g_sink = g_sink + *v.as<uint8_t>(); break;
    case gguf::value_type::u32: g_sink = g_sink + *v.as<uint32_t>(); break;
    case gguf::value_type::u64: g_sink = g_sink + *v.as<uint64_t>(); break;
    case gguf::value_type::f64: g_sink = g_sink + static_cast<uint64_t>(*v.as<double>() != 0); break;
    case gguf::value_type::boolean: g_sink = g_sink + *v.as<bool>(); break;
    case gguf::value_type::array: {
      const uint64_t n = v.size();
      if (v.element_type() == gguf::value_type::string) {
        auto all = v.as_string_array();
        FUZZ_CHECK(all.has_value() && all->size() == n, "as_string_array() disagrees with size()");
        for (auto s : *all) touch(s);
      } else if (v.element_type() == gguf::value_type::f32) {
        auto all = v.as_array<float>();
        FUZZ_CHECK(all.has_value() && all->size() == n, "as_array<float>() disagrees with size()");
      } else if (v.element_type() == gguf::value_type::i32) {
        auto all = v.as_array<int32_t>();
        FUZZ_CHECK(all.has_value() && all->size() == n, "as_array<int32_t>() disagrees with size()");
      }
      for (uint64_t i = 0; i < n && budget > 0; ++i, --budget) walk(v.at(i), depth + 1, budget);
      if (n > 0) walk(v.at(n - 1), depth + 1, budget);
      bool threw = false;
      try {
        (void)v.at(n);
      } catch (const std::out_of_range&) {
        threw = true;
      }
      FUZZ_CHECK(threw, "at(size()) did not throw");
      break;
    }
    default: break;  // the other scalars are fixed-size loads checked at open
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto r = gguf::reader::from_memory(bytes, "fuzz.gguf");
  if (!r) {
    FUZZ_CHECK(r.error().message.find("fuzz.gguf") != std::string::npos,
               "GGUF error does not name the file");
    return 0;
  }
  const gguf::reader& file = r.value();
  // A file without tensors may end before its (aligned) data section starts.
  FUZZ_CHECK(file.tensors().empty() || file.data_offset() <= size, "data section starts past the end");

  uint64_t budget = 4096;
  for (const auto& e : file.metadata()) {
    touch(e.key);
    FUZZ_CHECK(file.contains(e.key), "a metadata key is not found by contains()");
    walk(e.value, 0, budget);
    (void)file.get_uint(e.key);
    (void)file.get_string(e.key);
    (void)file.get_string_array(e.key);
    (void)file.get_array<float>(e.key);
  }
  for (const auto& t : file.tensors()) {
    touch(t.name);
    FUZZ_CHECK(file.find_tensor(t.name).has_value(), "a tensor is not found by find_tensor()");
    FUZZ_CHECK(t.data.size() == t.n_bytes, "tensor data span and n_bytes differ");
    FUZZ_CHECK(t.data.empty() || (t.data.data() >= bytes.data() &&
                                  t.data.data() + t.data.size() <= bytes.data() + bytes.size()),
               "tensor data outside the file");
    if (!t.data.empty()) {
      g_sink = g_sink + static_cast<uint8_t>(t.data.front()) + static_cast<uint8_t>(t.data.back());
    }
  }
  (void)file.architecture();

  // What model loading does next with the metadata.
  auto tok = triage::tokenizer::tokenizer::from_gguf(file);
  if (tok) {
    const auto& t = tok.value();
    const auto ids = t.encode("Where is my card? <|im_end|> 12345", true, true);
    for (int32_t id : ids) {
      if (id < 0 || static_cast<size_t>(id) >= t.vocab_size()) {
        std::fprintf(stderr, "id %d, vocabulary of %zu, bos %d eos %d unk %d\n", id, t.vocab_size(),
                     t.bos(), t.eos(), t.unk());
      }
      FUZZ_CHECK(id >= 0 && static_cast<size_t>(id) < t.vocab_size(), "encode() gave an id outside the vocabulary");
    }
    (void)t.decode(ids, true);
  } else {
    FUZZ_CHECK(!tok.error().message.empty(), "tokenizer error without a message");
  }
  return 0;
}
