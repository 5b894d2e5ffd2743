// types.h: the GGUF metadata value types and the ggml tensor types, with the
// block layout of each tensor type (how many elements share one block and how
// many bytes a block takes), which is all the reader needs to size tensors.
//
//   using namespace triage::gguf;
//   const type_traits* t = find_type(12);        // Q4_K, or nullptr if unknown
//   uint64_t bytes = row_bytes(tensor_type::q4_k, 4096);  // 16 blocks * 144
//   std::string_view n = type_name(tensor_type::q4_1);     // "Q4_1"
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace triage::gguf {

// Metadata value types; the numbers are the on-disk codes.
enum class value_type : uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};

// "uint32", "string", ...; "unknown" for codes outside the table.
std::string_view value_type_name(value_type t);
bool is_known_value_type(uint32_t code);
// Bytes of a scalar value on disk; 0 for string and array (variable size).
uint32_t value_type_size(value_type t);

// ggml tensor types; the numbers are the on-disk codes. Gaps are types ggml
// removed (Q4_2, Q4_3, the Q4_0_x_y and IQ4_NL_x_y repackings); files using
// them are rejected as unknown.
enum class tensor_type : uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q8_1 = 9,
  q2_k = 10,
  q3_k = 11,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  q8_k = 15,
  iq2_xxs = 16,
  iq2_xs = 17,
  iq3_xxs = 18,
  iq1_s = 19,
  iq4_nl = 20,
  iq3_s = 21,
  iq2_s = 22,
  iq4_xs = 23,
  i8 = 24,
  i16 = 25,
  i32 = 26,
  i64 = 27,
  f64 = 28,
  iq1_m = 29,
  bf16 = 30,
  tq1_0 = 34,
  tq2_0 = 35,
  mxfp4 = 39,
};

struct type_traits {
  tensor_type type;
  std::string_view name;  // as the GGUF tools print it: "F32", "Q4_K"
  uint32_t block_size;    // elements per block; a row holds a whole number of blocks
  uint32_t block_bytes;   // bytes per block
};

// nullptr for codes that are not (or no longer) ggml types.
const type_traits* find_type(uint32_t code);
// For valid enum values only (anything from find_type() or the enumerators).
const type_traits& traits(tensor_type t);
inline std::string_view type_name(tensor_type t) { return traits(t).name; }

// Bytes of one row of ne0 elements; nullopt when ne0 is not a whole number
// of blocks (or the size does not fit in 64 bits).
std::optional<uint64_t> row_bytes(tensor_type t, uint64_t ne0);

}  // namespace triage::gguf
