// bpe.h: byte-level BPE as GPT-2, SmolLM2, Llama 3 and Qwen2.5 use it: the
// byte alphabet that makes any byte string a string of printable symbols,
// and the merge rules applied to one pre-tokenized word.
//
// Symbols are interned as integers once, when the rules are built: every
// vocabulary token keeps its id, and merge operands or results that are not
// tokens get ids past the vocabulary. A merge is then one probe of a hash
// table keyed by the (left, right) id pair, giving its rank and result.
//
//   using namespace triage::tokenizer;
//   bpe rules = bpe::build(tokens, merges, /*ignore_merges=*/false);
//   std::vector<int32_t> ids;
//   rules.encode_word(" hello", ids);   // raw bytes of one word -> token ids
//
// Merging follows llama.cpp exactly: the lowest-ranked adjacent pair merges
// first, ties go to the leftmost pair, and a merge applies even when its
// result is not a token. A final symbol that is not a token falls back to
// the tokens spelled by each byte of its byte-level text (absent ones are
// dropped), as llama.cpp does.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace triage::tokenizer {

// GPT-2's byte-level alphabet: printable bytes stand for themselves, the
// others (controls, space, 0x7F-0xA0, 0xAD) take code points from U+0100 on.
uint32_t byte_to_symbol(uint8_t b);
// The byte a symbol stands for; -1 for a code point outside the alphabet.
int symbol_to_byte(uint32_t cpt);
// Appends the byte-level text (UTF-8) of raw bytes.
void append_symbols(std::string& out, std::string_view raw);
// The bytes a byte-level text stands for; nullopt if it holds any code point
// outside the alphabet (such a token can never come out of encoding).
std::optional<std::string> symbols_to_bytes(std::string_view text);

class bpe {
 public:
  // tokens: the vocabulary in id order, distinct (byte-level text, as in the
  // GGUF). merges: "left right" strings in rank order; an entry with no
  // space after its first byte is ignored, a repeated pair keeps its first
  // rank (both as llama.cpp). ignore_merges: a word that is a token as a
  // whole becomes that token directly (Llama 3).
  static bpe build(std::span<const std::string_view> tokens,
                   std::span<const std::string_view> merges, bool ignore_merges);

  // Appends the token ids of one word, given as raw bytes. Thread-safe.
  void encode_word(std::string_view raw, std::vector<int32_t>& out) const;

  size_t merge_count() const { return n_merges_; }

 private:
  struct merge {
    uint64_t key = k_empty;  // (left id << 32) | right id
    int32_t rank = 0;
    int32_t result = 0;  // symbol id of left + right
  };
  static constexpr uint64_t k_empty = ~uint64_t{0};

  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  size_t slot_of(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  const merge* find_merge(int32_t left, int32_t right) const;
  void insert_merge(int32_t left, int32_t right, int32_t rank, int32_t result);
  // Appends the ids for one final symbol: its token, or the byte fallback.
  void emit(int32_t symbol, std::string_view raw, std::vector<int32_t>& out) const;

  struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  int32_t n_vocab_ = 0;
  size_t n_merges_ = 0;
  // Symbol id of each byte's one-symbol text; -1 if neither a token nor in a merge.
  std::array<int32_t, 256> byte_symbol_{};
  // The token whose text is exactly this one byte, for the fallback; -1 if none.
  std::array<int32_t, 256> single_byte_token_{};
  // Open addressing, linear probing, power-of-two size at most half full.
  std::vector<merge> table_;
  unsigned shift_ = 64;
  bool ignore_merges_ = false;
  // Raw bytes of each token, for ignore_merges (empty otherwise).
  std::unordered_map<std::string, int32_t, string_hash, std::equal_to<>> raw_to_token_;
};

}  // namespace triage::tokenizer
