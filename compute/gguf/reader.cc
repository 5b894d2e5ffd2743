#include "compute/gguf/reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace triage::gguf {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader decodes little-endian files by memcpy");

// Limits from the GGUF specification.
constexpr uint64_t k_max_key_bytes = 65535;
constexpr uint64_t k_max_tensor_name_bytes = 64;
constexpr uint32_t k_max_dims = 4;
// Our own bound, so a crafted file cannot recurse deep enough to matter;
// real files nest at most one level.
constexpr uint32_t k_max_array_nesting = 8;
// Smallest possible encodings, which bound how many items the remaining bytes
// can hold: a key/value pair is an empty key (8), a type (4) and a uint8 (1);
// a tensor info is an empty name (8), n_dims (4), a type (4) and an offset
// (8) -- real ones also have dims, but the bound needs only to be safe.
constexpr uint64_t k_min_kv_bytes = 8 + 4 + 1;
constexpr uint64_t k_min_tensor_info_bytes = 8 + 4 + 4 + 8;

class error_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "gguf"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::not_found:
        return "not found";
      case errc::io_error:
        return "I/O error";
      case errc::bad_magic:
        return "not a GGUF file";
      case errc::unsupported_version:
        return "unsupported GGUF version";
      case errc::truncated:
        return "file truncated";
      case errc::bad_count:
        return "count exceeds the file";
      case errc::bad_string:
        return "bad string length";
      case errc::bad_type:
        return "unknown type";
      case errc::bad_value:
        return "value out of range";
      case errc::bad_alignment:
        return "bad alignment";
      case errc::bad_tensor:
        return "bad tensor";
      case errc::duplicate_key:
        return "duplicate metadata key";
      case errc::duplicate_tensor:
        return "duplicate tensor name";
      case errc::wrong_type:
        return "wrong metadata type";
    }
    return "unknown gguf error";
  }
};

// Builds messages; numbers print as decimal.
template <class... Args>
std::string cat(const Args&... args) {
  std::string s;
  auto append = [&s](const auto& a) {
    if constexpr (std::is_arithmetic_v<std::decay_t<decltype(a)>>) {
      s += std::to_string(a);
    } else {
      s += std::string_view(a);
    }
  };
  (append(args), ...);
  return s;
}

// A name from the file, quoted for a message: bytes of a corrupt file could
// be anything, so non-printable ones are escaped and long names cut.
std::string quoted(std::string_view s) {
  constexpr size_t k_max = 80;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < k_max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char k_hex[] = "0123456789abcdef";
      out += "\\x";
      out += k_hex[c >> 4];
      out += k_hex[c & 15];
    }
  }
  if (s.size() > k_max) out += "...";
  return out + "'";
}

// Byte size of a value that the parser has already validated.
uint64_t validated_size(const std::byte* p, value_type t) {
  switch (t) {
    case value_type::string:
      return 8 + detail::load<uint64_t>(p);
    case value_type::array: {
      const auto element = static_cast<value_type>(detail::load<uint32_t>(p));
      const uint64_t n = detail::load<uint64_t>(p + 4);
      if (const uint32_t size = value_type_size(element); size != 0) return 12 + n * size;
      uint64_t total = 12;
      for (uint64_t i = 0; i < n; ++i) total += validated_size(p + total, element);
      return total;
    }
    default:
      return value_type_size(t);
  }
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

}  // namespace

const std::error_category& gguf_category() noexcept {
  static const error_category_impl category;
  return category;
}

// --- value_view ---

value_type value_view::element_type() const {
  return static_cast<value_type>(detail::load<uint32_t>(p_));
}

uint64_t value_view::size() const { return detail::load<uint64_t>(p_ + 4); }

value_view value_view::at(uint64_t i) const {
  if (type_ != value_type::array || i >= size()) {
    throw std::out_of_range("gguf value_view::at: index " + std::to_string(i) + " out of range");
  }
  const value_type element = element_type();
  if (const uint32_t size = value_type_size(element); size != 0) {
    return value_view(elements() + i * size, element);
  }
  const std::byte* p = elements();
  for (uint64_t k = 0; k < i; ++k) p += validated_size(p, element);
  return value_view(p, element);
}

std::optional<std::vector<std::string_view>> value_view::as_string_array() const {
  if (type_ != value_type::array || element_type() != value_type::string) return std::nullopt;
  const uint64_t n = size();
  std::vector<std::string_view> out;
  out.reserve(n);
  const std::byte* p = elements();
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t len = detail::load<uint64_t>(p);
    out.emplace_back(reinterpret_cast<const char*>(p + 8), len);
    p += 8 + len;
  }
  return out;
}

// --- mapping ---

reader::mapping::mapping(mapping&& o) noexcept
    : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}

reader::mapping& reader::mapping::operator=(mapping&& o) noexcept {
  if (this != &o) {
    mapping old(std::move(*this));
    addr_ = std::exchange(o.addr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

reader::mapping::~mapping() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
}

// --- parser ---

namespace detail {

// One pass over the file, validating as it goes; stops at the first problem.
// Every read checks the remaining bytes first, so nothing reads out of bounds
// and no count is trusted before the bytes it implies are known to exist.
class parser {
 public:
  parser(std::span<const std::byte> bytes, const std::string& name, reader& out)
      : p_(bytes.data()), size_(bytes.size()), name_(name), r_(out) {}

  std::optional<error> run() {
    if (header() && metadata() && alignment() && tensor_infos() && tensor_data()) {
      return std::nullopt;
    }
    return std::move(error_);
  }

 private:
  // Records the first failure; returns false so callers can `return fail(...)`.
  bool fail(errc code, std::string what) {
    std::string where = where_;
    if (!path_.empty()) {
      where += " element ";
      for (uint64_t i : path_) where += cat("[", i, "]");
    }
    error_ = make_error(code, cat(name_, ": ", where, ": ", what));
    return false;
  }

  uint64_t remaining() const { return size_ - pos_; }

  template <class T>
  bool read(T& out, std::string_view field) {
    if (remaining() < sizeof(T)) {
      return fail(errc::truncated, cat(field, " (", sizeof(T), " bytes) at offset ", pos_,
                                       " runs past the end of the file (", size_, " bytes)"));
    }
    std::memcpy(&out, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  bool read_string(std::string_view& out, std::string_view field, uint64_t max_bytes) {
    const uint64_t at = pos_;
    uint64_t n = 0;
    if (remaining() < 8) {
      return fail(errc::truncated, cat(field, " length at offset ", pos_,
                                       " runs past the end of the file (", size_, " bytes)"));
    }
    std::memcpy(&n, p_ + pos_, 8);
    pos_ += 8;
    if (n > remaining()) {
      return fail(errc::bad_string, cat(field, " length ", n, " at offset ", at,
                                        " exceeds the file (", size_, " bytes)"));
    }
    if (n > max_bytes) {
      return fail(errc::bad_string, cat(field, " length ", n, " at offset ", at,
                                        " exceeds the GGUF limit of ", max_bytes, " bytes"));
    }
    out = std::string_view(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return true;
  }

  bool header() {
    where_ = "header";
    if (size_ < 4) {
      return fail(errc::truncated,
                  cat("file is ", size_, " bytes, too short for the magic 'GGUF' at offset 0"));
    }
    const std::string_view magic(reinterpret_cast<const char*>(p_), 4);
    pos_ = 4;
    if (magic != "GGUF") {
      return fail(errc::bad_magic, cat("magic ", quoted(magic), " at offset 0 is not 'GGUF'"));
    }
    uint32_t version = 0;
    if (!read(version, "version")) return false;
    if (version == 1) {
      return fail(errc::unsupported_version,
                  "version 1 at offset 4 is not supported (GGUF v1 used 32-bit counts; "
                  "convert the file with a current llama.cpp)");
    }
    if (const uint32_t swapped = __builtin_bswap32(version); swapped == 2 || swapped == 3) {
      return fail(errc::unsupported_version,
                  cat("version ", version, " at offset 4 is big-endian GGUF v", swapped,
                      "; only little-endian files are supported"));
    }
    if (version != 2 && version != 3) {
      return fail(errc::unsupported_version,
                  cat("version ", version, " at offset 4 is not supported (only 2 and 3)"));
    }
    r_.version_ = version;

    const uint64_t tensors_at = pos_;
    if (!read(tensor_count_, "tensor count")) return false;
    const uint64_t keys_at = pos_;
    if (!read(kv_count_, "metadata key count")) return false;
    if (kv_count_ > remaining() / k_min_kv_bytes) {
      return fail(errc::bad_count, cat("metadata key count ", kv_count_, " at offset ", keys_at,
                                       " exceeds what the file (", size_, " bytes) can hold"));
    }
    if (tensor_count_ > remaining() / k_min_tensor_info_bytes) {
      return fail(errc::bad_count, cat("tensor count ", tensor_count_, " at offset ", tensors_at,
                                       " exceeds what the file (", size_, " bytes) can hold"));
    }
    return true;
  }

  bool metadata() {
    // Counts are bounded by the file size, but reserve no more than a real
    // model needs so that a lying count costs nothing.
    r_.metadata_.reserve(std::min<uint64_t>(kv_count_, 1024));
    for (uint64_t i = 0; i < kv_count_; ++i) {
      const uint64_t key_at = pos_;
      where_ = cat("metadata key #", i);
      std::string_view key;
      if (!read_string(key, "key", k_max_key_bytes)) return false;
      where_ = cat("metadata key #", i, " ", quoted(key));

      const uint64_t type_at = pos_;
      uint32_t code = 0;
      if (!read(code, "value type")) return false;
      if (!is_known_value_type(code)) {
        return fail(errc::bad_type,
                    cat("value type ", code, " at offset ", type_at, " is unknown"));
      }
      const auto type = static_cast<value_type>(code);
      const value_view value(p_ + pos_, type);
      if (!value_payload(type, 0)) return false;

      const auto [it, inserted] = r_.key_index_.emplace(key, r_.metadata_.size());
      if (!inserted) {
        const metadata_entry& first = r_.metadata_[it->second];
        return fail(errc::duplicate_key, cat("key at offset ", key_at, " repeats metadata key #",
                                             it->second, " at offset ", first.offset));
      }
      r_.metadata_.push_back({key, value, key_at});
    }
    return true;
  }

  // Validates and skips one value; `nesting` counts the enclosing arrays.
  bool value_payload(value_type type, uint32_t nesting) {
    switch (type) {
      case value_type::string: {
        std::string_view s;
        return read_string(s, "string", UINT64_MAX);
      }
      case value_type::array:
        return array_payload(nesting + 1);
      case value_type::boolean: {
        uint8_t b = 0;
        if (!read(b, "bool")) return false;
        if (b > 1) {
          return fail(errc::bad_value, cat("bool ", b, " at offset ", pos_ - 1, " is not 0 or 1"));
        }
        return true;
      }
      default: {
        const uint32_t size = value_type_size(type);
        if (remaining() < size) {
          return fail(errc::truncated,
                      cat(value_type_name(type), " (", size, " bytes) at offset ", pos_,
                          " runs past the end of the file (", size_, " bytes)"));
        }
        pos_ += size;
        return true;
      }
    }
  }

  bool array_payload(uint32_t nesting) {
    const uint64_t type_at = pos_;
    uint32_t code = 0;
    if (!read(code, "array element type")) return false;
    if (!is_known_value_type(code)) {
      return fail(errc::bad_type,
                  cat("array element type ", code, " at offset ", type_at, " is unknown"));
    }
    const auto element = static_cast<value_type>(code);
    if (element == value_type::array && nesting >= k_max_array_nesting) {
      return fail(errc::bad_value, cat("arrays nested deeper than ", k_max_array_nesting,
                                       " levels at offset ", type_at));
    }
    const uint64_t count_at = pos_;
    uint64_t count = 0;
    if (!read(count, "array length")) return false;
    const uint32_t fixed = value_type_size(element);
    const uint64_t min_bytes = element == value_type::string  ? 8
                               : element == value_type::array ? 12
                                                              : fixed;
    if (count > remaining() / min_bytes) {
      return fail(errc::bad_count, cat("array length ", count, " at offset ", count_at,
                                       " exceeds the file (", size_, " bytes)"));
    }
    if (fixed != 0 && element != value_type::boolean) {
      pos_ += count * fixed;  // in bounds: checked against remaining() above
      return true;
    }
    path_.push_back(0);
    for (uint64_t i = 0; i < count; ++i) {
      path_.back() = i;
      if (!value_payload(element, nesting)) return false;
    }
    path_.pop_back();
    return true;
  }

  bool alignment() {
    const auto it = r_.key_index_.find("general.alignment");
    if (it == r_.key_index_.end()) return true;  // the default, 32
    const metadata_entry& entry = r_.metadata_[it->second];
    where_ = cat("metadata key #", it->second, " 'general.alignment'");
    const uint64_t at = static_cast<uint64_t>(entry.value.p_ - p_);
    const auto value = entry.value.as<uint32_t>();
    if (!value) {
      return fail(errc::bad_alignment,
                  cat("value at offset ", at, " is ", value_type_name(entry.value.type()),
                      ", expected uint32"));
    }
    if (*value == 0 || !std::has_single_bit(*value)) {
      return fail(errc::bad_alignment,
                  cat("alignment ", *value, " at offset ", at, " is not a power of two"));
    }
    r_.alignment_ = *value;
    return true;
  }

  bool tensor_infos() {
    r_.tensors_.reserve(std::min<uint64_t>(tensor_count_, 4096));
    offset_field_at_.reserve(r_.tensors_.capacity());
    for (uint64_t i = 0; i < tensor_count_; ++i) {
      where_ = cat("tensor #", i);
      tensor_info t;
      if (!read_string(t.name, "name", k_max_tensor_name_bytes)) return false;
      where_ = cat("tensor #", i, " ", quoted(t.name));

      const uint64_t dims_at = pos_;
      if (!read(t.n_dims, "n_dims")) return false;
      if (t.n_dims == 0 || t.n_dims > k_max_dims) {
        return fail(errc::bad_tensor,
                    cat("n_dims ", t.n_dims, " at offset ", dims_at, " is not in 1..", k_max_dims));
      }
      for (uint32_t d = 0; d < t.n_dims; ++d) {
        const uint64_t at = pos_;
        if (!read(t.ne[d], "dimension")) return false;
        if (t.ne[d] == 0)
          return fail(errc::bad_tensor, cat("dimension ", d, " at offset ", at, " is 0"));
      }

      const uint64_t type_at = pos_;
      uint32_t code = 0;
      if (!read(code, "tensor type")) return false;
      const type_traits* type = find_type(code);
      if (type == nullptr) {
        return fail(errc::bad_type,
                    cat("tensor type ", code, " at offset ", type_at, " is unknown"));
      }
      t.type = type->type;

      offset_field_at_.push_back(pos_);
      if (!read(t.offset, "data offset")) return false;

      if (!sizes(t, *type)) return false;
      const auto [it, inserted] = r_.tensor_index_.emplace(t.name, r_.tensors_.size());
      if (!inserted) {
        return fail(errc::duplicate_tensor, cat("name repeats tensor #", it->second));
      }
      r_.tensors_.push_back(t);
    }
    return true;
  }

  // n_elements and n_bytes, refusing anything that overflows or that ggml
  // could not address (its element counts are int64).
  bool sizes(tensor_info& t, const type_traits& type) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      if (!checked_mul(n, t.ne[d], n) || n > uint64_t{INT64_MAX}) {
        std::string dims;
        for (uint32_t k = 0; k < t.n_dims; ++k) dims += cat(k ? " x " : "", t.ne[k]);
        return fail(errc::bad_tensor, cat("dimensions ", dims, " overflow 63 bits"));
      }
    }
    t.n_elements = n;
    if (t.ne[0] % type.block_size != 0) {
      return fail(errc::bad_tensor, cat("row length ", t.ne[0], " is not a multiple of the ",
                                        type.name, " block size ", type.block_size));
    }
    const uint64_t rows = n / t.ne[0];
    if (!checked_mul(t.ne[0] / type.block_size, type.block_bytes, t.n_bytes) ||
        !checked_mul(t.n_bytes, rows, t.n_bytes)) {
      return fail(errc::bad_tensor,
                  cat("size of ", n, " ", type.name, " elements overflows 64 bits"));
    }
    return true;
  }

  bool tensor_data() {
    const uint64_t alignment = r_.alignment_;
    // pos_ <= size_ < 2^63 and alignment <= 2^31: no overflow.
    const uint64_t data_offset = (pos_ + alignment - 1) / alignment * alignment;
    r_.data_offset_ = data_offset;
    if (r_.tensors_.empty()) return true;  // the data section may be absent
    if (data_offset > size_) {
      where_ = "data section";
      return fail(errc::truncated, cat("data section at offset ", data_offset,
                                       " starts past the end of the file (", size_, " bytes)"));
    }
    const uint64_t available = size_ - data_offset;
    for (size_t i = 0; i < r_.tensors_.size(); ++i) {
      tensor_info& t = r_.tensors_[i];
      where_ = cat("tensor #", i, " ", quoted(t.name));
      if (t.offset % alignment != 0) {
        return fail(errc::bad_alignment,
                    cat("data offset ", t.offset, " at offset ", offset_field_at_[i],
                        " is not a multiple of the alignment ", alignment));
      }
      if (t.offset > available || t.n_bytes > available - t.offset) {
        return fail(errc::bad_tensor, cat("data (", t.n_bytes, " bytes at data offset ", t.offset,
                                          ", given at offset ", offset_field_at_[i],
                                          ") runs past the end of the file (", size_,
                                          " bytes, data section from ", data_offset, ")"));
      }
      t.data = std::span<const std::byte>(p_ + data_offset + t.offset, t.n_bytes);
    }

    // Overlapping tensors would let a write through one corrupt another and
    // mean the file is not what the converter meant to write.
    std::vector<size_t> order(r_.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    // Stable, so of two tensors at one offset the later one is reported.
    std::stable_sort(order.begin(), order.end(), [this](size_t a, size_t b) {
      return r_.tensors_[a].offset < r_.tensors_[b].offset;
    });
    for (size_t k = 1; k < order.size(); ++k) {
      const tensor_info& prev = r_.tensors_[order[k - 1]];
      const tensor_info& t = r_.tensors_[order[k]];
      if (prev.offset + prev.n_bytes > t.offset) {  // both in the file: no overflow
        where_ = cat("tensor #", order[k], " ", quoted(t.name));
        return fail(errc::bad_tensor,
                    cat("data at data offset ", t.offset, " overlaps tensor ", quoted(prev.name),
                        " (data offsets ", prev.offset, " to ", prev.offset + prev.n_bytes, ")"));
      }
    }
    return true;
  }

  const std::byte* p_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& name_;
  reader& r_;

  uint64_t tensor_count_ = 0;
  uint64_t kv_count_ = 0;
  std::vector<uint64_t> offset_field_at_;  // per tensor: where its data offset is stored

  std::string where_;           // the part being read: "header", "tensor #3 'output.weight'"
  std::vector<uint64_t> path_;  // indices into nested arrays, for messages
  std::optional<error> error_;
};

}  // namespace detail

// --- reader ---

result<reader> reader::open(const std::filesystem::path& path) {
  std::string name = path.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return make_error(e == ENOENT ? errc::not_found : errc::io_error,
                      cat(name, ": cannot open: ", std::generic_category().message(e)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return make_error(errc::io_error,
                      cat(name, ": cannot stat: ", std::generic_category().message(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(errc::io_error, cat(name, ": not a regular file"));
  }
  const auto size = static_cast<size_t>(st.st_size);
  mapping m;
  std::span<const std::byte> bytes;
  if (size > 0) {  // mmap refuses empty files; the parser reports them as truncated
    void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int e = errno;
    ::close(fd);
    if (addr == MAP_FAILED) {
      return make_error(errc::io_error, cat(name, ": cannot mmap ", size,
                                            " bytes: ", std::generic_category().message(e)));
    }
    m = mapping(addr, size);
    bytes = {static_cast<const std::byte*>(addr), size};
  } else {
    ::close(fd);
  }
  return parse(bytes, std::move(name), std::move(m));
}

result<reader> reader::from_memory(std::span<const std::byte> bytes, std::string name) {
  return parse(bytes, std::move(name), mapping());
}

result<reader> reader::parse(std::span<const std::byte> bytes, std::string name, mapping m) {
  reader r;
  r.name_ = std::move(name);
  r.mapping_ = std::move(m);
  r.bytes_ = bytes;
  if (auto failure = detail::parser(bytes, r.name_, r).run()) return std::move(*failure);
  return r;
}

result<value_view> reader::get_value(std::string_view key) const {
  const auto it = key_index_.find(key);
  if (it == key_index_.end()) {
    return make_error(errc::not_found, cat(name_, ": metadata key ", quoted(key), " not found"));
  }
  return metadata_[it->second].value;
}

result<value_view> reader::typed_value(std::string_view key, value_type t,
                                       std::optional<value_type> element) const {
  auto v = get_value(key);
  if (!v) return v;
  const value_view value = v.value();
  const bool type_ok = value.type() == t;
  if (type_ok && (!element || value.element_type() == *element)) return value;

  std::string actual(value_type_name(value.type()));
  if (value.type() == value_type::array) {
    actual += cat(" of ", value_type_name(value.element_type()));
  }
  std::string expected(value_type_name(t));
  if (element) expected += cat(" of ", value_type_name(*element));
  return make_error(errc::wrong_type, cat(name_, ": metadata key ", quoted(key), " is ", actual,
                                          ", expected ", expected));
}

result<uint64_t> reader::get_uint(std::string_view key) const {
  auto v = get_value(key);
  if (!v) return v.error();
  const value_view value = v.value();
  auto negative = [&](int64_t n) -> result<uint64_t> {
    if (n >= 0) return static_cast<uint64_t>(n);
    return make_error(errc::bad_value,
                      cat(name_, ": metadata key ", quoted(key), " is negative (", n, ")"));
  };
  switch (value.type()) {
    case value_type::u8:
      return *value.as<uint8_t>();
    case value_type::u16:
      return *value.as<uint16_t>();
    case value_type::u32:
      return *value.as<uint32_t>();
    case value_type::u64:
      return *value.as<uint64_t>();
    case value_type::i8:
      return negative(*value.as<int8_t>());
    case value_type::i16:
      return negative(*value.as<int16_t>());
    case value_type::i32:
      return negative(*value.as<int32_t>());
    case value_type::i64:
      return negative(*value.as<int64_t>());
    default:
      return make_error(errc::wrong_type,
                        cat(name_, ": metadata key ", quoted(key), " is ",
                            value_type_name(value.type()), ", expected an integer"));
  }
}

result<std::vector<std::string_view>> reader::get_string_array(std::string_view key) const {
  auto v = typed_value(key, value_type::array, value_type::string);
  if (!v) return v.error();
  return *v.value().as_string_array();
}

result<tensor_info> reader::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  if (it == tensor_index_.end()) {
    return make_error(errc::not_found, cat(name_, ": tensor ", quoted(name), " not found"));
  }
  return tensors_[it->second];
}

}  // namespace triage::gguf
