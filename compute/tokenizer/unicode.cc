#include "compute/tokenizer/unicode.h"

namespace triage::tokenizer {

size_t decode_utf8(std::string_view s, size_t pos, uint32_t& cpt) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const auto continuation = [&](size_t i) { return i < s.size() && (byte(i) & 0xC0) == 0x80; };
  const uint8_t b0 = byte(pos);
  if (b0 < 0x80) {
    cpt = b0;
    return 1;
  }
  if ((b0 & 0x40) == 0) {  // a continuation byte where a lead byte belongs
    cpt = k_replacement_char;
    return 1;
  }
  if ((b0 & 0x20) == 0) {
    if (!continuation(pos + 1)) {
      cpt = k_replacement_char;
      return 1;
    }
    cpt = (static_cast<uint32_t>(b0 & 0x1F) << 6) | (byte(pos + 1) & 0x3F);
    return 2;
  }
  if ((b0 & 0x10) == 0) {
    if (!continuation(pos + 1) || !continuation(pos + 2)) {
      cpt = k_replacement_char;
      return 1;
    }
    cpt = (static_cast<uint32_t>(b0 & 0x0F) << 12) |
          (static_cast<uint32_t>(byte(pos + 1) & 0x3F) << 6) | (byte(pos + 2) & 0x3F);
    return 3;
  }
  if ((b0 & 0x08) == 0) {
    if (!continuation(pos + 1) || !continuation(pos + 2) || !continuation(pos + 3)) {
      cpt = k_replacement_char;
      return 1;
    }
    cpt = (static_cast<uint32_t>(b0 & 0x07) << 18) |
          (static_cast<uint32_t>(byte(pos + 1) & 0x3F) << 12) |
          (static_cast<uint32_t>(byte(pos + 2) & 0x3F) << 6) | (byte(pos + 3) & 0x3F);
    if (cpt > k_max_code_point) cpt = k_replacement_char;
    return 4;
  }
  cpt = k_replacement_char;  // 0xF8..0xFF never start a sequence
  return 1;
}

void append_utf8(std::string& out, uint32_t cpt) {
  if (cpt < 0x80) {
    out += static_cast<char>(cpt);
  } else if (cpt < 0x800) {
    out += static_cast<char>(0xC0 | (cpt >> 6));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  } else if (cpt < 0x10000) {
    out += static_cast<char>(0xE0 | (cpt >> 12));
    out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cpt >> 18));
    out += static_cast<char>(0x80 | ((cpt >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  }
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cpt = 0;
    const size_t n = decode_utf8(s, i, cpt);
    if (cpt == k_replacement_char) {
      // Either a real U+FFFD (EF BF BD) or a decoding failure.
      if (n != 3 || static_cast<uint8_t>(s[i]) != 0xEF) return false;
    }
    const size_t shortest = cpt < 0x80 ? 1 : cpt < 0x800 ? 2 : cpt < 0x10000 ? 3 : 4;
    if (n != shortest || (cpt >= 0xD800 && cpt <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

}  // namespace triage::tokenizer
