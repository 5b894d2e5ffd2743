// unicode.h: what the pre-tokenizer needs to know about code points: their
// class (letter, number, whitespace, ...) and UTF-8 decoding that never fails.
//
// The class table is generated at build time from Python's unicodedata by
// gen_unicode_tables.py (nothing generated is committed); a lookup is two
// array loads.
//
//   using namespace triage::tokenizer;
//   bool l = has(cpt_flags(U'é'), cpt_class::letter);           // true
//   bool s = has(cpt_flags(0x3000), cpt_class::whitespace);      // true
//   uint32_t c; size_t n = decode_utf8("\xff", 0, c);           // n == 1, c == U+FFFD
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace triage::tokenizer {

// One byte per code point: exactly one of the general-category classes
// (Unicode's \p{L}, \p{N}, \p{P}, \p{S}, \p{M}, \p{Z}, \p{C}; unassigned code
// points are \p{C}) plus the whitespace bit (White_Space, regex \s).
enum class cpt_class : uint8_t {
  letter = 1,
  number = 2,
  punctuation = 4,
  symbol = 8,
  mark = 16,
  separator = 32,
  control = 64,
  whitespace = 128,
};

inline constexpr bool has(uint8_t flags, cpt_class c) {
  return (flags & static_cast<uint8_t>(c)) != 0;
}

namespace unicode_tables {
extern const uint16_t stage1[];  // 0x110000 / 256 block numbers
extern const uint8_t stage2[];   // the distinct blocks of 256 flag bytes
}  // namespace unicode_tables

inline constexpr uint32_t k_replacement_char = 0xFFFD;
inline constexpr uint32_t k_max_code_point = 0x10FFFF;

// Flags of a code point; beyond U+10FFFF those of an unassigned one.
inline uint8_t cpt_flags(uint32_t cpt) {
  if (cpt > k_max_code_point) return static_cast<uint8_t>(cpt_class::control);
  return unicode_tables::stage2[(static_cast<uint32_t>(unicode_tables::stage1[cpt >> 8]) << 8) |
                                (cpt & 0xFF)];
}

// Decodes the code point starting at s[pos] into `cpt` and returns how many
// bytes it used (at least 1). Deliberately as lenient as llama.cpp, whose ids
// we must reproduce: a sequence is read from its lead byte and continuation
// bytes only, so overlong forms and surrogates decode to their value; a bad
// lead byte, a missing continuation byte or a truncated sequence gives
// U+FFFD for one byte. A 4-byte sequence above U+10FFFF gives U+FFFD for the
// whole sequence (llama.cpp aborts on it).
size_t decode_utf8(std::string_view s, size_t pos, uint32_t& cpt);

// Appends the UTF-8 encoding of cpt (at most U+10FFFF) to out.
void append_utf8(std::string& out, uint32_t cpt);

// True when `s` is valid, shortest-form UTF-8 without surrogates.
bool is_valid_utf8(std::string_view s);

}  // namespace triage::tokenizer
