// tokenizer_fuzz.cc: libFuzzer target for the tokenizer, encoding arbitrary
// bytes and decoding arbitrary ids with the real SmolLM2 vocabulary (loaded
// once; $TRIAGE_MODEL or the model ops/setup.sh installs), or, when the model
// is absent, a small byte-level BPE vocabulary built here with a few merges
// and ChatML control tokens.
//
// The first input byte picks the mode: bit 0 add_special, bit 1
// parse_special, bit 2 decode instead of encode. Encoding must give ids
// inside the vocabulary, and for valid UTF-8 made of bytes the vocabulary
// has tokens for (not parsing special tokens) decode(encode(text)) must give
// the text back. Decoding takes the rest as
// 16-bit numbers spread a little past both ends of the vocabulary: ids
// outside it must throw std::out_of_range, as documented, and nothing else
// may throw.
//
//   build-fuzz/tests/fuzz/fuzz_tokenizer tests/fuzz/corpus/tokenizer   (ops/fuzz.sh)
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "compute/gguf/reader.h"
#include "compute/gguf/writer.h"
#include "compute/tokenizer/bpe.h"
#include "compute/tokenizer/tokenizer.h"
#include "schemas/utf8.h"
#include "tests/fuzz/fuzz_check.h"

namespace gguf = triage::gguf;
namespace tok = triage::tokenizer;

namespace {

std::optional<tok::tokenizer> g_tokenizer;
// Bytes whose byte-level symbol is a token: encoding drops the others (as
// llama.cpp does; SmolLM2 has no token for 0x04, for one), so only text
// made of these round-trips. All true for SentencePiece vocabularies.
std::array<bool, 256> g_representable{};

std::filesystem::path model_path() {
  if (const char* env = std::getenv("TRIAGE_MODEL"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : "") /
         ".cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// Byte-level text of raw bytes ("a b" -> "aĠb").
std::string bl(std::string_view raw) {
  std::string out;
  tok::append_symbols(out, raw);
  return out;
}

// All 256 byte symbols, some merges ("th", "the", " the", "ca", "card", ...)
// and the ChatML control tokens, like a miniature SmolLM2.
tok::tokenizer small_vocabulary() {
  std::vector<std::string> tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  std::vector<int32_t> types = {3, 3, 3};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(bl(std::string(1, static_cast<char>(b))));
    types.push_back(1);
  }
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"t", "h"}, {"th", "e"}, {bl(" "), "the"}, {"c", "a"}, {"ca", "r"}, {"car", "d"},
      {bl(" "), "card"}, {"i", "s"}, {bl(" "), "is"}, {"1", "2"}};
  std::vector<std::string> merge_rules;
  for (const auto& [l, r] : merges) {
    merge_rules.push_back(l + " " + r);
    tokens.push_back(l + r);
    types.push_back(1);
  }
  gguf::writer w;
  w.set("tokenizer.ggml.model", gguf::value::string("gpt2"));
  w.set("tokenizer.ggml.pre", gguf::value::string("smollm"));
  w.set("tokenizer.ggml.tokens", gguf::value::string_array(tokens));
  w.set("tokenizer.ggml.token_type", gguf::value::i32_array(types));
  w.set("tokenizer.ggml.merges", gguf::value::string_array(merge_rules));
  w.set("tokenizer.ggml.bos_token_id", gguf::value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", gguf::value::u32(2));
  const auto bytes = w.bytes();
  auto r = gguf::reader::from_memory(bytes, "small-vocabulary.gguf");
  if (!r) {
    std::fprintf(stderr, "tokenizer_fuzz: %s\n", r.error().message.c_str());
    std::abort();
  }
  auto t = tok::tokenizer::from_gguf(r.value());
  if (!t) {
    std::fprintf(stderr, "tokenizer_fuzz: %s\n", t.error().message.c_str());
    std::abort();
  }
  return t.value();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const auto path = model_path();
  if (std::filesystem::exists(path)) {
    auto r = gguf::reader::open(path);
    if (r) {
      auto t = tok::tokenizer::from_gguf(r.value());
      if (t) g_tokenizer = t.value();
    }
  }
  if (g_tokenizer) {
    std::fprintf(stderr, "tokenizer_fuzz: vocabulary of %s (%zu tokens)\n", path.c_str(),
                 g_tokenizer->vocab_size());
  } else {
    g_tokenizer = small_vocabulary();
    std::fprintf(stderr, "tokenizer_fuzz: %s not found; a small vocabulary of %zu tokens\n",
                 path.c_str(), g_tokenizer->vocab_size());
  }
  for (int b = 0; b < 256; ++b) {
    g_representable[static_cast<size_t>(b)] =
        g_tokenizer->find(bl(std::string(1, static_cast<char>(b)))).has_value();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const tok::tokenizer& t = *g_tokenizer;
  const bool add_special = (data[0] & 1) != 0;
  const bool parse_special = (data[0] & 2) != 0;
  const bool decode = (data[0] & 4) != 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto n_vocab = static_cast<int64_t>(t.vocab_size());

  if (decode) {
    std::vector<int32_t> ids;
    bool outside = false;
    for (size_t i = 0; i + 1 < rest.size(); i += 2) {
      const auto v = static_cast<int64_t>(static_cast<uint8_t>(rest[i]) |
                                          (static_cast<uint8_t>(rest[i + 1]) << 8));
      const int64_t id = v % (n_vocab + 16) - 8;  // a few below 0 and past the end
      outside = outside || id < 0 || id >= n_vocab;
      ids.push_back(static_cast<int32_t>(id));
    }
    bool threw = false;
    try {
      const std::string text = t.decode(ids, parse_special);
      for (int32_t id : ids) (void)t.piece(id, add_special);
    } catch (const std::out_of_range&) {
      threw = true;
    }
    FUZZ_CHECK(threw == outside, "decode() threw for ids inside the vocabulary, or not for ids outside");
    return 0;
  }

  const std::vector<int32_t> ids = t.encode(rest, add_special, parse_special);
  for (int32_t id : ids) {
    FUZZ_CHECK(id >= 0 && id < n_vocab, "encode() gave an id outside the vocabulary");
  }
  const std::string back = t.decode(ids);
  bool representable = true;
  for (char ch : rest) representable = representable && g_representable[static_cast<uint8_t>(ch)];
  if (!parse_special && representable && !triage::schemas::first_invalid_utf8(rest)) {
    if (back != rest) {
      std::fprintf(stderr, "text:    \"%.*s\"\ndecoded: \"%s\"\nids:", static_cast<int>(rest.size()),
                   rest.data(), back.c_str());
      for (int32_t id : ids) std::fprintf(stderr, " %d", id);
      std::fprintf(stderr, "\n");
    }
    FUZZ_CHECK(back == rest, "decode(encode(text)) is not the text");
  }
  return 0;
}
