#include "compute/gguf/types.h"

#include <array>
#include <stdexcept>

namespace triage::gguf {
namespace {

// Block layouts from ggml's block structs: e.g. Q4_1 is an f16 scale, an f16
// min and 32 4-bit quants = 2 + 2 + 16 bytes per 32 elements; the K-quants
// work on 256-element super-blocks.
constexpr std::array<type_traits, 32> k_types{{
    {tensor_type::f32, "F32", 1, 4},
    {tensor_type::f16, "F16", 1, 2},
    {tensor_type::q4_0, "Q4_0", 32, 18},
    {tensor_type::q4_1, "Q4_1", 32, 20},
    {tensor_type::q5_0, "Q5_0", 32, 22},
    {tensor_type::q5_1, "Q5_1", 32, 24},
    {tensor_type::q8_0, "Q8_0", 32, 34},
    {tensor_type::q8_1, "Q8_1", 32, 36},
    {tensor_type::q2_k, "Q2_K", 256, 84},
    {tensor_type::q3_k, "Q3_K", 256, 110},
    {tensor_type::q4_k, "Q4_K", 256, 144},
    {tensor_type::q5_k, "Q5_K", 256, 176},
    {tensor_type::q6_k, "Q6_K", 256, 210},
    {tensor_type::q8_k, "Q8_K", 256, 292},
    {tensor_type::iq2_xxs, "IQ2_XXS", 256, 66},
    {tensor_type::iq2_xs, "IQ2_XS", 256, 74},
    {tensor_type::iq3_xxs, "IQ3_XXS", 256, 98},
    {tensor_type::iq1_s, "IQ1_S", 256, 50},
    {tensor_type::iq4_nl, "IQ4_NL", 32, 18},
    {tensor_type::iq3_s, "IQ3_S", 256, 110},
    {tensor_type::iq2_s, "IQ2_S", 256, 82},
    {tensor_type::iq4_xs, "IQ4_XS", 256, 136},
    {tensor_type::i8, "I8", 1, 1},
    {tensor_type::i16, "I16", 1, 2},
    {tensor_type::i32, "I32", 1, 4},
    {tensor_type::i64, "I64", 1, 8},
    {tensor_type::f64, "F64", 1, 8},
    {tensor_type::iq1_m, "IQ1_M", 256, 56},
    {tensor_type::bf16, "BF16", 1, 2},
    {tensor_type::tq1_0, "TQ1_0", 256, 54},
    {tensor_type::tq2_0, "TQ2_0", 256, 66},
    {tensor_type::mxfp4, "MXFP4", 32, 17},
}};

}  // namespace

std::string_view value_type_name(value_type t) {
  switch (t) {
    case value_type::u8:
      return "uint8";
    case value_type::i8:
      return "int8";
    case value_type::u16:
      return "uint16";
    case value_type::i16:
      return "int16";
    case value_type::u32:
      return "uint32";
    case value_type::i32:
      return "int32";
    case value_type::f32:
      return "float32";
    case value_type::boolean:
      return "bool";
    case value_type::string:
      return "string";
    case value_type::array:
      return "array";
    case value_type::u64:
      return "uint64";
    case value_type::i64:
      return "int64";
    case value_type::f64:
      return "float64";
  }
  return "unknown";
}

bool is_known_value_type(uint32_t code) { return code <= static_cast<uint32_t>(value_type::f64); }

uint32_t value_type_size(value_type t) {
  switch (t) {
    case value_type::u8:
    case value_type::i8:
    case value_type::boolean:
      return 1;
    case value_type::u16:
    case value_type::i16:
      return 2;
    case value_type::u32:
    case value_type::i32:
    case value_type::f32:
      return 4;
    case value_type::u64:
    case value_type::i64:
    case value_type::f64:
      return 8;
    case value_type::string:
    case value_type::array:
      return 0;
  }
  return 0;
}

const type_traits* find_type(uint32_t code) {
  for (const type_traits& t : k_types) {
    if (static_cast<uint32_t>(t.type) == code) return &t;
  }
  return nullptr;
}

const type_traits& traits(tensor_type t) {
  const type_traits* found = find_type(static_cast<uint32_t>(t));
  if (found == nullptr) {
    throw std::invalid_argument("gguf: tensor type " + std::to_string(static_cast<uint32_t>(t)) +
                                " is not a ggml type");
  }
  return *found;
}

std::optional<uint64_t> row_bytes(tensor_type t, uint64_t ne0) {
  const type_traits& tt = traits(t);
  if (ne0 % tt.block_size != 0) return std::nullopt;
  const uint64_t blocks = ne0 / tt.block_size;
  if (blocks > UINT64_MAX / tt.block_bytes) return std::nullopt;
  return blocks * tt.block_bytes;
}

}  // namespace triage::gguf
