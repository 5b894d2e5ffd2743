// errc.h: error codes of the GGUF reader and writer, usable as std::error_code.
//
// Every failure also carries a message naming the file, the field (metadata
// key or tensor) and the byte offset; the code is for programs, the message
// for people.
//
//   auto r = triage::gguf::reader::open("model.gguf");
//   if (!r && r.error().code == triage::gguf::errc::not_found) { ... }
#pragma once

#include <system_error>

namespace triage::gguf {

enum class errc {
  // 0 is success for std::error_code, so codes start at 1.
  not_found = 1,        // no such file, metadata key or tensor
  io_error,             // open/stat/mmap/write failed for another reason
  bad_magic,            // the file does not start with "GGUF"
  unsupported_version,  // GGUF v1, or a version newer than 3
  truncated,            // a fixed-size field runs past the end of the file
  bad_count,            // a tensor, key or array count the file cannot hold
  bad_string,           // a string length past the end of the file or over a limit
  bad_type,             // unknown metadata value type or tensor type
  bad_value,            // a value out of its domain (bool not 0/1, arrays nested too deep)
  bad_alignment,        // general.alignment invalid, or a tensor offset not aligned
  bad_tensor,           // dims, sizes or data range of a tensor are wrong
  duplicate_key,        // a metadata key appears twice
  duplicate_tensor,     // a tensor name appears twice
  wrong_type,           // a getter asked for a type other than the stored one
};

const std::error_category& gguf_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), gguf_category()};
}

}  // namespace triage::gguf

template <>
struct std::is_error_code_enum<triage::gguf::errc> : std::true_type {};
