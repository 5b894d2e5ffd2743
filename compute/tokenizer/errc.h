// errc.h: error codes of the tokenizer, usable as std::error_code.
//
// Building a tokenizer from a GGUF file is the only fallible step (encoding
// never fails: any byte string has token ids). The code says what kind of
// problem the file has; the message names the file, the key and the value.
//
//   auto t = triage::tokenizer::tokenizer::from_gguf(gguf);
//   if (!t && t.error().code == triage::tokenizer::errc::unknown_pre_tokenizer) ...
#pragma once

#include <system_error>
#include <type_traits>

namespace triage::tokenizer {

enum class errc {
  // 0 is success for std::error_code, so codes start at 1.
  missing_key = 1,        // a required tokenizer.ggml.* key is absent
  wrong_type,             // a tokenizer key holds another GGUF type than the spec's
  unsupported_model,      // tokenizer.ggml.model is not byte-level BPE ("gpt2")
  unknown_pre_tokenizer,  // tokenizer.ggml.pre names rules we do not implement
  bad_vocab,              // empty vocabulary, duplicate token, arrays of unequal length
  bad_token_id,           // a special token id outside the vocabulary
};

const std::error_category& tokenizer_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), tokenizer_category()};
}

}  // namespace triage::tokenizer

template <>
struct std::is_error_code_enum<triage::tokenizer::errc> : std::true_type {};
