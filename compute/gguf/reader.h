// reader.h: reads a GGUF model file (versions 2 and 3) in place over a
// read-only mmap. Opening validates the whole structure (header, metadata,
// tensor table, tensor data ranges) and copies nothing: strings and tensor
// data are views into the mapping, valid as long as the reader lives.
// A malformed file gives an error naming the file, the key or tensor at
// fault and the byte offset; it never crashes the reader.
//
//   auto r = triage::gguf::reader::open("SmolLM2-135M-Instruct.Q4_1.gguf");
//   if (!r) return r.error();                       // errc + message
//   const triage::gguf::reader& gguf = r.value();
//   auto layers = gguf.get_u32("llama.block_count");  // result<uint32_t>
//   auto tokens = gguf.get_string_array("tokenizer.ggml.tokens");
//   auto embd = gguf.find_tensor("token_embd.weight");  // result<tensor_info>
//   // embd.value().ne[0] is the row length, .data the bytes in the file.
//
// A reader never changes after open(), so its const calls are safe from
// any number of threads. Assumes a little-endian host, as the GGUF files we
// read are little-endian (big-endian GGUF files are recognised and rejected).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "compute/gguf/errc.h"
#include "compute/gguf/types.h"

namespace triage::gguf {

namespace detail {
class parser;
}

// The C++ type for each scalar GGUF value type (strings read as string_view).
template <class T>
struct value_type_of;  // undefined: only GGUF's own types map
template <>
struct value_type_of<uint8_t> : std::integral_constant<value_type, value_type::u8> {};
template <>
struct value_type_of<int8_t> : std::integral_constant<value_type, value_type::i8> {};
template <>
struct value_type_of<uint16_t> : std::integral_constant<value_type, value_type::u16> {};
template <>
struct value_type_of<int16_t> : std::integral_constant<value_type, value_type::i16> {};
template <>
struct value_type_of<uint32_t> : std::integral_constant<value_type, value_type::u32> {};
template <>
struct value_type_of<int32_t> : std::integral_constant<value_type, value_type::i32> {};
template <>
struct value_type_of<float> : std::integral_constant<value_type, value_type::f32> {};
template <>
struct value_type_of<bool> : std::integral_constant<value_type, value_type::boolean> {};
template <>
struct value_type_of<std::string_view> : std::integral_constant<value_type, value_type::string> {};
template <>
struct value_type_of<uint64_t> : std::integral_constant<value_type, value_type::u64> {};
template <>
struct value_type_of<int64_t> : std::integral_constant<value_type, value_type::i64> {};
template <>
struct value_type_of<double> : std::integral_constant<value_type, value_type::f64> {};

// A metadata value inside the mapping. Cheap to copy; only the reader makes
// them, after validating the bytes they point at.
class value_view {
 public:
  value_view() = default;
  value_type type() const { return type_; }

  // A scalar or string; nullopt when the stored type is not exactly T.
  template <class T>
  std::optional<T> as() const;

  // Arrays. element_type() and size() expect type() == array.
  value_type element_type() const;
  uint64_t size() const;
  // Element i (throws std::out_of_range past the end); O(1) for scalar
  // elements, O(i) for strings and nested arrays, which must be walked.
  value_view at(uint64_t i) const;
  // The whole array copied out; nullopt when this is not an array of T.
  template <class T>
  std::optional<std::vector<T>> as_array() const;
  // Views of every string of an array of strings; nullopt otherwise.
  std::optional<std::vector<std::string_view>> as_string_array() const;

 private:
  friend class detail::parser;
  value_view(const std::byte* payload, value_type type) : p_(payload), type_(type) {}

  const std::byte* elements() const { return p_ + 12; }  // after element type and count

  const std::byte* p_ = nullptr;  // first byte of the value (for arrays: the element type)
  value_type type_ = value_type::u8;
};

struct metadata_entry {
  std::string_view key;
  value_view value;
  uint64_t offset = 0;  // of the key in the file
};

struct tensor_info {
  std::string_view name;
  tensor_type type = tensor_type::f32;
  uint32_t n_dims = 0;
  // ne[0] is the innermost dimension (the row length), as GGUF stores it;
  // dimensions past n_dims are 1.
  std::array<uint64_t, 4> ne{1, 1, 1, 1};
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  uint64_t offset = 0;  // from the start of the data section
  std::span<const std::byte> data;

  std::span<const uint64_t> dims() const { return {ne.data(), n_dims}; }
  uint64_t row_bytes() const { return n_bytes / (n_elements / ne[0]); }
};

class reader {
 public:
  // Maps and validates the file. errc::not_found if it does not exist.
  static result<reader> open(const std::filesystem::path& path);
  // Validates bytes the caller owns; they must outlive the reader and stay
  // unchanged. `name` stands for the file in messages. Tensor data is only as
  // aligned as `bytes` is (open() gives page-aligned mappings).
  static result<reader> from_memory(std::span<const std::byte> bytes, std::string name);

  reader(reader&&) noexcept = default;
  reader& operator=(reader&&) noexcept = default;

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section
  std::span<const std::byte> bytes() const { return bytes_; }

  // Metadata, in file order.
  std::span<const metadata_entry> metadata() const { return metadata_; }
  bool contains(std::string_view key) const { return key_index_.contains(key); }
  result<value_view> get_value(std::string_view key) const;

  // Typed getters: errc::not_found when the key is absent, errc::wrong_type
  // (naming the key, the expected and the stored type) when it holds another
  // type. No conversions, except in get_uint.
  template <class T>
  result<T> get(std::string_view key) const;
  result<uint8_t> get_u8(std::string_view key) const { return get<uint8_t>(key); }
  result<int8_t> get_i8(std::string_view key) const { return get<int8_t>(key); }
  result<uint16_t> get_u16(std::string_view key) const { return get<uint16_t>(key); }
  result<int16_t> get_i16(std::string_view key) const { return get<int16_t>(key); }
  result<uint32_t> get_u32(std::string_view key) const { return get<uint32_t>(key); }
  result<int32_t> get_i32(std::string_view key) const { return get<int32_t>(key); }
  result<uint64_t> get_u64(std::string_view key) const { return get<uint64_t>(key); }
  result<int64_t> get_i64(std::string_view key) const { return get<int64_t>(key); }
  result<float> get_f32(std::string_view key) const { return get<float>(key); }
  result<double> get_f64(std::string_view key) const { return get<double>(key); }
  result<bool> get_bool(std::string_view key) const { return get<bool>(key); }
  result<std::string_view> get_string(std::string_view key) const {
    return get<std::string_view>(key);
  }
  // Any integer type holding a non-negative value: converters disagree on
  // the width of counts such as context lengths.
  result<uint64_t> get_uint(std::string_view key) const;

  // Arrays: get_array<float>("tokenizer.ggml.scores"),
  // get_array<int32_t>("tokenizer.ggml.token_type"). Copies the numbers
  // (the file gives no alignment for them); strings stay views.
  template <class T>
  result<std::vector<T>> get_array(std::string_view key) const;
  result<std::vector<std::string_view>> get_string_array(std::string_view key) const;

  // general.architecture, e.g. "llama".
  result<std::string_view> architecture() const { return get_string("general.architecture"); }

  // Tensors, in file order.
  std::span<const tensor_info> tensors() const { return tensors_; }
  bool has_tensor(std::string_view name) const { return tensor_index_.contains(name); }
  result<tensor_info> find_tensor(std::string_view name) const;

 private:
  friend class detail::parser;

  // Owns the mmap; unmaps on destruction.
  class mapping {
   public:
    mapping() = default;
    mapping(void* addr, size_t size) : addr_(addr), size_(size) {}
    mapping(mapping&& o) noexcept;
    mapping& operator=(mapping&& o) noexcept;
    ~mapping();

   private:
    void* addr_ = nullptr;
    size_t size_ = 0;
  };

  reader() = default;
  static result<reader> parse(std::span<const std::byte> bytes, std::string name, mapping m);
  // The value of `key` if it has type `t` (for arrays: of elements `element`).
  result<value_view> typed_value(std::string_view key, value_type t,
                                 std::optional<value_type> element = std::nullopt) const;

  std::string name_;
  mapping mapping_;
  std::span<const std::byte> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<metadata_entry> metadata_;
  // Keys and names are views into the mapping, which never moves.
  std::unordered_map<std::string_view, size_t> key_index_;
  std::vector<tensor_info> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

// --- implementation of the templates ---

namespace detail {
template <class T>
T load(const std::byte* p) {
  if constexpr (std::is_same_v<T, bool>) {
    return *p != std::byte{0};
  } else {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }
}
}  // namespace detail

template <class T>
std::optional<T> value_view::as() const {
  if (type_ != value_type_of<T>::value) return std::nullopt;
  if constexpr (std::is_same_v<T, std::string_view>) {
    const uint64_t n = detail::load<uint64_t>(p_);
    return std::string_view(reinterpret_cast<const char*>(p_ + 8), n);
  } else {
    return detail::load<T>(p_);
  }
}

template <class T>
std::optional<std::vector<T>> value_view::as_array() const {
  static_assert(!std::is_same_v<T, std::string_view>, "use as_string_array()");
  if (type_ != value_type::array || element_type() != value_type_of<T>::value) {
    return std::nullopt;
  }
  const uint64_t n = size();
  std::vector<T> out(n);
  if constexpr (std::is_same_v<T, bool>) {
    for (uint64_t i = 0; i < n; ++i) out[i] = elements()[i] != std::byte{0};
  } else if (n > 0) {
    std::memcpy(out.data(), elements(), n * sizeof(T));
  }
  return out;
}

template <class T>
result<T> reader::get(std::string_view key) const {
  auto v = typed_value(key, value_type_of<T>::value);
  if (!v) return v.error();
  return *v.value().template as<T>();
}

template <class T>
result<std::vector<T>> reader::get_array(std::string_view key) const {
  auto v = typed_value(key, value_type::array, value_type_of<T>::value);
  if (!v) return v.error();
  return *v.value().template as_array<T>();
}

}  // namespace triage::gguf
