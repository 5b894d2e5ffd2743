// utf8.h: UTF-8 validation that says where the first bad byte is.
//
//   if (auto bad = triage::schemas::first_invalid_utf8(text)) {
//     report("invalid UTF-8 at byte " + std::to_string(*bad));
//   }
//
// Strict (RFC 3629): no overlong forms, no surrogates (U+D800..U+DFFF), nothing
// above U+10FFFF, no truncated sequences. Protobuf and JSON both require it for
// string fields, and the tokenizer assumes it.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace triage::schemas {

// Byte offset of the first byte that does not start or continue a valid
// sequence, or nullopt when all of `text` is valid UTF-8.
std::optional<std::size_t> first_invalid_utf8(std::string_view text);

}  // namespace triage::schemas
