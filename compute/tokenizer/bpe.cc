#include "compute/tokenizer/bpe.h"

#include <algorithm>
#include <bit>
#include <deque>

#include "compute/tokenizer/unicode.h"

namespace triage::tokenizer {
namespace {

constexpr bool is_printable_byte(unsigned b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct byte_alphabet {
  std::array<uint32_t, 256> to_symbol{};
  // Indexed by code point below 256 + 68 (the number of non-printable bytes).
  std::array<int16_t, 324> to_byte{};

  constexpr byte_alphabet() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (unsigned b = 0; b < 256; ++b) {
      to_symbol[b] = is_printable_byte(b) ? b : next++;
      to_byte[to_symbol[b]] = static_cast<int16_t>(b);
    }
  }
};
constexpr byte_alphabet k_alphabet;

// Working memory of encode_word, kept per thread so that encoding allocates
// nothing once warm. Symbols are indexed by the byte they start at.
struct word_scratch {
  struct candidate {
    int32_t rank;
    int32_t left;
    int32_t right;
    int32_t result;
    uint32_t left_len;  // lengths when queued: a change means the pair is gone
    uint32_t right_len;
  };
  std::vector<int32_t> symbol;
  std::vector<uint32_t> len;
  std::vector<int32_t> prev;
  std::vector<int32_t> next;
  std::vector<candidate> heap;
};

// Lowest rank first, then leftmost (std heaps put the "largest" on top).
constexpr auto k_heap_order = [](const word_scratch::candidate& a,
                                 const word_scratch::candidate& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
};

}  // namespace

uint32_t byte_to_symbol(uint8_t b) { return k_alphabet.to_symbol[b]; }

int symbol_to_byte(uint32_t cpt) {
  return cpt < k_alphabet.to_byte.size() ? k_alphabet.to_byte[cpt] : -1;
}

void append_symbols(std::string& out, std::string_view raw) {
  for (char c : raw) append_utf8(out, byte_to_symbol(static_cast<uint8_t>(c)));
}

std::optional<std::string> symbols_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cpt = 0;
    i += decode_utf8(text, i, cpt);
    const int b = symbol_to_byte(cpt);
    if (b < 0) return std::nullopt;
    out += static_cast<char>(b);
  }
  return out;
}

bpe bpe::build(std::span<const std::string_view> tokens, std::span<const std::string_view> merges,
               bool ignore_merges) {
  bpe b;
  b.n_vocab_ = static_cast<int32_t>(tokens.size());
  b.ignore_merges_ = ignore_merges;

  // Interning: token texts keep their ids; other merge strings get new ones.
  std::unordered_map<std::string_view, int32_t> symbol_of;
  symbol_of.reserve(tokens.size() + merges.size() / 4);
  for (size_t i = 0; i < tokens.size(); ++i) {
    symbol_of.emplace(tokens[i], static_cast<int32_t>(i));
  }
  std::deque<std::string> extra;  // stable storage for the keys of non-token symbols
  auto intern = [&](std::string_view s) {
    if (auto it = symbol_of.find(s); it != symbol_of.end()) return it->second;
    const auto id = static_cast<int32_t>(tokens.size() + extra.size());
    extra.emplace_back(s);
    symbol_of.emplace(extra.back(), id);
    return id;
  };

  const size_t capacity = std::bit_ceil(std::max<size_t>(16, merges.size() * 2));
  b.table_.assign(capacity, merge{});
  b.shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view m = merges[rank];
    const size_t space = m.find(' ', 1);
    if (space == std::string_view::npos) continue;
    const std::string_view left = m.substr(0, space);
    const std::string_view right = m.substr(space + 1);
    const int32_t l = intern(left);
    const int32_t r = intern(right);
    joined.assign(left);
    joined += right;
    const int32_t result = intern(joined);
    b.insert_merge(l, r, static_cast<int32_t>(rank), result);
  }

  std::string symbol;
  for (unsigned byte = 0; byte < 256; ++byte) {
    symbol.clear();
    append_utf8(symbol, byte_to_symbol(static_cast<uint8_t>(byte)));
    auto it = symbol_of.find(symbol);
    b.byte_symbol_[byte] = it == symbol_of.end() ? -1 : it->second;
    const char raw = static_cast<char>(byte);
    auto single = symbol_of.find(std::string_view(&raw, 1));
    b.single_byte_token_[byte] =
        single != symbol_of.end() && single->second < b.n_vocab_ ? single->second : -1;
  }

  if (ignore_merges) {
    b.raw_to_token_.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (auto raw = symbols_to_bytes(tokens[i])) {
        b.raw_to_token_.emplace(std::move(*raw), static_cast<int32_t>(i));
      }
    }
  }
  return b;
}

void bpe::insert_merge(int32_t left, int32_t right, int32_t rank, int32_t result) {
  const uint64_t key = pair_key(left, right);
  for (size_t i = slot_of(key);; i = (i + 1) & (table_.size() - 1)) {
    if (table_[i].key == key) return;  // a repeated pair keeps its first rank
    if (table_[i].key == k_empty) {
      table_[i] = merge{key, rank, result};
      ++n_merges_;
      return;
    }
  }
}

const bpe::merge* bpe::find_merge(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  for (size_t i = slot_of(key);; i = (i + 1) & (table_.size() - 1)) {
    if (table_[i].key == key) return &table_[i];
    if (table_[i].key == k_empty) return nullptr;
  }
}

void bpe::emit(int32_t symbol, std::string_view raw, std::vector<int32_t>& out) const {
  if (symbol >= 0 && symbol < n_vocab_) {
    out.push_back(symbol);
    return;
  }
  // Not a token (a merge result outside the vocabulary, or a byte no token
  // spells): llama.cpp looks up each byte of the symbol's byte-level UTF-8
  // text as a one-byte token and drops those that do not exist.
  for (char c : raw) {
    const uint32_t cpt = byte_to_symbol(static_cast<uint8_t>(c));
    char utf8[2];
    size_t n = 0;
    if (cpt < 0x80) {
      utf8[n++] = static_cast<char>(cpt);
    } else {
      utf8[n++] = static_cast<char>(0xC0 | (cpt >> 6));
      utf8[n++] = static_cast<char>(0x80 | (cpt & 0x3F));
    }
    for (size_t i = 0; i < n; ++i) {
      const int32_t id = single_byte_token_[static_cast<uint8_t>(utf8[i])];
      if (id >= 0) out.push_back(id);
    }
  }
}

void bpe::encode_word(std::string_view raw, std::vector<int32_t>& out) const {
  const size_t n = raw.size();
  if (n == 0) return;
  if (ignore_merges_) {
    if (auto it = raw_to_token_.find(raw); it != raw_to_token_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const auto byte_at = [&](size_t i) { return static_cast<uint8_t>(raw[i]); };
  if (n == 1) {
    emit(byte_symbol_[byte_at(0)], raw, out);
    return;
  }

  thread_local word_scratch s;
  s.symbol.resize(n);
  s.len.resize(n);
  s.prev.resize(n);
  s.next.resize(n);
  s.heap.clear();
  for (size_t i = 0; i < n; ++i) {
    s.symbol[i] = byte_symbol_[byte_at(i)];
    s.len[i] = 1;
    s.prev[i] = static_cast<int32_t>(i) - 1;
    s.next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  auto queue_pair = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t a = s.symbol[left];
    const int32_t b = s.symbol[right];
    if (a < 0 || b < 0) return;  // a symbol in no merge
    const merge* m = find_merge(a, b);
    if (m == nullptr) return;
    s.heap.push_back({m->rank, left, right, m->result, s.len[left], s.len[right]});
    std::push_heap(s.heap.begin(), s.heap.end(), k_heap_order);
  };
  for (size_t i = 0; i + 1 < n; ++i) {
    queue_pair(static_cast<int32_t>(i), static_cast<int32_t>(i + 1));
  }

  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), k_heap_order);
    const auto c = s.heap.back();
    s.heap.pop_back();
    // Stale when either side has merged since: a symbol's start never moves,
    // so unchanged non-zero lengths mean the same two adjacent symbols.
    if (s.len[c.left] != c.left_len || s.len[c.right] != c.right_len || c.right_len == 0) {
      continue;
    }
    s.symbol[c.left] = c.result;
    s.len[c.left] += s.len[c.right];
    s.len[c.right] = 0;
    s.next[c.left] = s.next[c.right];
    if (s.next[c.right] >= 0) s.prev[s.next[c.right]] = c.left;
    queue_pair(s.prev[c.left], c.left);
    queue_pair(c.left, s.next[c.left]);
  }

  for (int32_t i = 0; i >= 0; i = s.next[i]) {
    emit(s.symbol[i], raw.substr(static_cast<size_t>(i), s.len[i]), out);
  }
}

}  // namespace triage::tokenizer
