#include "compute/gguf/writer.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace triage::gguf {
namespace {

void put_bytes(std::vector<std::byte>& out, const void* p, size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  out.insert(out.end(), b, b + n);
}

template <class T>
void put(std::vector<std::byte>& out, T v) {
  put_bytes(out, &v, sizeof v);  // the host is little-endian, like the file
}

void put_string(std::vector<std::byte>& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  put_bytes(out, s.data(), s.size());
}

void pad_to(std::vector<std::byte>& out, uint64_t alignment) {
  out.resize((out.size() + alignment - 1) / alignment * alignment, std::byte{0});
}

}  // namespace

// --- value ---

value value::scalar(value_type t, uint64_t bits) {
  value v;
  v.type_ = t;
  v.bits_ = bits;
  return v;
}

value value::f32(float v) { return scalar(value_type::f32, std::bit_cast<uint32_t>(v)); }
value value::f64(double v) { return scalar(value_type::f64, std::bit_cast<uint64_t>(v)); }

value value::string(std::string s) {
  value v;
  v.type_ = value_type::string;
  v.string_ = std::move(s);
  return v;
}

value value::array(value_type element, std::vector<value> items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].type_ != element) {
      throw std::invalid_argument("gguf writer: array of " + std::string(value_type_name(element)) +
                                  " has item " + std::to_string(i) + " of type " +
                                  std::string(value_type_name(items[i].type_)));
    }
  }
  value v;
  v.type_ = value_type::array;
  v.element_ = element;
  v.items_ = std::move(items);
  return v;
}

value value::string_array(const std::vector<std::string>& items) {
  std::vector<value> values;
  values.reserve(items.size());
  for (const std::string& s : items) values.push_back(string(s));
  return array(value_type::string, std::move(values));
}

value value::f32_array(std::span<const float> items) {
  std::vector<value> values;
  values.reserve(items.size());
  for (float f : items) values.push_back(f32(f));
  return array(value_type::f32, std::move(values));
}

value value::i32_array(std::span<const int32_t> items) {
  std::vector<value> values;
  values.reserve(items.size());
  for (int32_t i : items) values.push_back(i32(i));
  return array(value_type::i32, std::move(values));
}

void value::serialize(std::vector<std::byte>& out) const {
  switch (type_) {
    case value_type::string:
      put_string(out, string_);
      return;
    case value_type::array:
      put<uint32_t>(out, static_cast<uint32_t>(element_));
      put<uint64_t>(out, items_.size());
      for (const value& item : items_) item.serialize(out);
      return;
    default:
      put_bytes(out, &bits_, value_type_size(type_));
      return;
  }
}

// --- writer ---

writer::writer(uint32_t version) : version_(version) {
  if (version != 2 && version != 3) {
    throw std::invalid_argument("gguf writer: version " + std::to_string(version) +
                                " (only 2 and 3)");
  }
}

void writer::set(std::string key, value v) {
  if (key == "general.alignment") {
    throw std::invalid_argument("gguf writer: use set_alignment() for general.alignment");
  }
  for (const auto& [k, unused] : metadata_) {
    if (k == key) throw std::invalid_argument("gguf writer: metadata key '" + key + "' set twice");
  }
  metadata_.emplace_back(std::move(key), std::move(v));
}

void writer::set_alignment(uint32_t alignment) {
  if (!std::has_single_bit(alignment)) {
    throw std::invalid_argument("gguf writer: alignment " + std::to_string(alignment) +
                                " is not a power of two");
  }
  alignment_ = alignment;
  alignment_set_ = true;
}

void writer::add_tensor(std::string name, tensor_type type, std::vector<uint64_t> dims,
                        std::span<const std::byte> data) {
  const std::string what = "gguf writer: tensor '" + name + "': ";
  if (dims.empty() || dims.size() > 4) throw std::invalid_argument(what + "needs 1 to 4 dims");
  uint64_t n = 1;
  for (uint64_t d : dims) {
    if (d == 0) throw std::invalid_argument(what + "has a zero dimension");
    n *= d;  // test-sized tensors: no overflow
  }
  const std::optional<uint64_t> row = row_bytes(type, dims[0]);
  if (!row) {
    throw std::invalid_argument(what + "row length " + std::to_string(dims[0]) +
                                " is not a whole number of " + std::string(type_name(type)) +
                                " blocks");
  }
  const uint64_t size = *row * (n / dims[0]);
  if (data.size() != size) {
    throw std::invalid_argument(what + "data is " + std::to_string(data.size()) +
                                " bytes, expected " + std::to_string(size));
  }
  for (const tensor& t : tensors_) {
    if (t.name == name) throw std::invalid_argument(what + "added twice");
  }
  tensors_.push_back({std::move(name), type, std::move(dims), {data.begin(), data.end()}});
}

std::vector<std::byte> writer::bytes() const {
  std::vector<std::byte> out;
  put_bytes(out, "GGUF", 4);
  put<uint32_t>(out, version_);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, metadata_.size() + (alignment_set_ ? 1 : 0));

  for (const auto& [key, v] : metadata_) {
    put_string(out, key);
    put<uint32_t>(out, static_cast<uint32_t>(v.type()));
    v.serialize(out);
  }
  if (alignment_set_) {
    put_string(out, "general.alignment");
    put<uint32_t>(out, static_cast<uint32_t>(value_type::u32));
    put<uint32_t>(out, alignment_);
  }

  uint64_t offset = 0;  // within the data section, each tensor aligned
  for (const tensor& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) put<uint64_t>(out, d);
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, offset);
    offset = (offset + t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }

  pad_to(out, alignment_);
  for (const tensor& t : tensors_) {
    put_bytes(out, t.data.data(), t.data.size());
    pad_to(out, alignment_);  // the data section starts aligned, so this aligns the next offset
  }
  return out;
}

result<void> writer::write_file(const std::filesystem::path& path) const {
  const std::vector<std::byte> data = bytes();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (f)
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (f) f.close();
  if (!f) {
    return make_error(errc::io_error,
                      path.string() + ": cannot write " + std::to_string(data.size()) + " bytes");
  }
  return success();
}

}  // namespace triage::gguf
