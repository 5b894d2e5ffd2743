// writer.h: builds GGUF files (v2 or v3, little-endian): metadata of every
// value type including nested arrays, and tensors placed at aligned offsets.
// For tests, LoRA adapters and tiny random models; everything is assembled in
// memory, so it is meant for files of megabytes, not gigabytes.
//
//   using namespace triage::gguf;
//   writer w;                                        // version 3, alignment 32
//   w.set("general.architecture", value::string("llama"));
//   w.set("llama.block_count", value::u32(2));
//   w.set("tokenizer.ggml.tokens", value::string_array({"<s>", "a", "b"}));
//   w.add_tensor("token_embd.weight", tensor_type::f32, {8, 3}, bytes);  // ne0 first
//   auto ok = w.write_file("tiny.gguf");             // result<void>
//
// Misuse (a duplicate key, data of the wrong size, a bad alignment) throws
// std::invalid_argument: it is a bug in the caller, not a runtime condition.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "compute/gguf/errc.h"
#include "compute/gguf/types.h"

namespace triage::gguf {

// A metadata value to write; arrays hold values, so they nest.
class value {
 public:
  static value u8(uint8_t v) { return scalar(value_type::u8, v); }
  static value i8(int8_t v) { return scalar(value_type::i8, static_cast<uint8_t>(v)); }
  static value u16(uint16_t v) { return scalar(value_type::u16, v); }
  static value i16(int16_t v) { return scalar(value_type::i16, static_cast<uint16_t>(v)); }
  static value u32(uint32_t v) { return scalar(value_type::u32, v); }
  static value i32(int32_t v) { return scalar(value_type::i32, static_cast<uint32_t>(v)); }
  static value u64(uint64_t v) { return scalar(value_type::u64, v); }
  static value i64(int64_t v) { return scalar(value_type::i64, static_cast<uint64_t>(v)); }
  static value f32(float v);
  static value f64(double v);
  static value boolean(bool v) { return scalar(value_type::boolean, v ? 1 : 0); }
  static value string(std::string v);
  // Every item must have type `element` (nested arrays may differ in their
  // own element types and lengths).
  static value array(value_type element, std::vector<value> items);
  // Shorthands for the common arrays.
  static value string_array(const std::vector<std::string>& items);
  static value f32_array(std::span<const float> items);
  static value i32_array(std::span<const int32_t> items);

  value_type type() const { return type_; }

 private:
  friend class writer;
  static value scalar(value_type t, uint64_t bits);
  void serialize(std::vector<std::byte>& out) const;  // the payload, without the type

  value_type type_ = value_type::u8;
  uint64_t bits_ = 0;  // scalars, little-endian in the low value_type_size() bytes
  std::string string_;
  value_type element_ = value_type::u8;
  std::vector<value> items_;
};

class writer {
 public:
  // version: 2 or 3 (identical for little-endian files).
  explicit writer(uint32_t version = 3);

  // Adds a key; keys are written in the order they are set.
  void set(std::string key, value v);
  // Power of two, written as general.alignment (after the other keys);
  // without a call the file uses GGUF's default of 32 and has no such key.
  void set_alignment(uint32_t alignment);
  // dims are ne0 (row length) first; data must be exactly the tensor's size.
  void add_tensor(std::string name, tensor_type type, std::vector<uint64_t> dims,
                  std::span<const std::byte> data);

  std::vector<std::byte> bytes() const;
  result<void> write_file(const std::filesystem::path& path) const;

 private:
  struct tensor {
    std::string name;
    tensor_type type;
    std::vector<uint64_t> dims;
    std::vector<std::byte> data;
  };

  uint32_t version_;
  uint32_t alignment_ = 32;
  bool alignment_set_ = false;
  std::vector<std::pair<std::string, value>> metadata_;
  std::vector<tensor> tensors_;
};

}  // namespace triage::gguf
