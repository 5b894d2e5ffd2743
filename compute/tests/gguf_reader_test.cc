// Tests of the GGUF reader and writer: round trips through files the writer
// makes, one test per kind of corruption (each checks the error code and that
// the message names the field), every truncation of a small file, a fixed-seed
// byte-flipping loop, and the real model when it is installed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "compute/gguf/reader.h"
#include "compute/gguf/types.h"
#include "compute/gguf/writer.h"

namespace triage::gguf {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using bytes_t = std::vector<std::byte>;

bytes_t random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  bytes_t b(n);
  for (std::byte& x : b) x = static_cast<std::byte>(rng() & 0xff);
  return b;
}

result<reader> read(const bytes_t& b) { return reader::from_memory(b, "test.gguf"); }

// Offset of the first occurrence of `needle` in the file.
size_t find(const bytes_t& b, std::string_view needle) {
  const auto* begin = reinterpret_cast<const char*>(b.data());
  const std::string_view hay(begin, b.size());
  const size_t at = hay.find(needle);
  if (at == std::string_view::npos) {
    ADD_FAILURE() << "'" << needle << "' not in the file";
    return 0;
  }
  return at;
}

template <class T>
void patch(bytes_t& b, size_t offset, T v) {
  ASSERT_LE(offset + sizeof v, b.size());
  std::memcpy(b.data() + offset, &v, sizeof v);
}

template <class T>
T peek(const bytes_t& b, size_t offset) {
  T v{};
  std::memcpy(&v, b.data() + offset, sizeof v);
  return v;
}

// Where a metadata value starts: after the key string and the type field.
size_t value_offset(const bytes_t& b, std::string_view key) {
  return find(b, key) + key.size() + 4;
}

// Fields of a tensor info, found through its (unique) name.
struct tensor_fields {
  size_t n_dims, dims, type, offset;
};
tensor_fields tensor_at(const bytes_t& b, std::string_view name) {
  const size_t n_dims = find(b, name) + name.size();
  const uint32_t n = peek<uint32_t>(b, n_dims);
  return {n_dims, n_dims + 4, n_dims + 4 + 8 * n, n_dims + 4 + 8 * n + 4};
}

void expect_error(const result<reader>& r, errc code, std::vector<std::string> parts) {
  ASSERT_FALSE(r) << "expected " << make_error_code(code).message();
  EXPECT_EQ(r.error().code, make_error_code(code)) << r.error().message;
  EXPECT_THAT(r.error().message, HasSubstr("test.gguf: "));
  for (const std::string& p : parts) EXPECT_THAT(r.error().message, HasSubstr(p));
}

// A small valid model: a few keys of the kinds real models have and three
// tensors of different types.
writer small_writer(uint32_t version = 3) {
  writer w(version);
  w.set("general.architecture", value::string("llama"));
  w.set("general.name", value::string("tiny-model"));
  w.set("llama.block_count", value::u32(2));
  w.set("llama.use_parallel", value::boolean(true));
  w.set("tokenizer.ggml.tokens", value::string_array({"<s>", "</s>", "hello", "world"}));
  const std::vector<float> scores{0.0f, -1.0f, -2.5f, -3.0f};
  w.set("tokenizer.ggml.scores", value::f32_array(scores));
  w.set("test.nested",
        value::array(value_type::array, {value::array(value_type::u16, {value::u16(7)}),
                                         value::array(value_type::string, {value::string("x")})}));
  w.add_tensor("token_embd.weight", tensor_type::f32, {4, 2}, random_bytes(32, 1));
  w.add_tensor("blk.0.attn_q.weight", tensor_type::q8_0, {32, 2}, random_bytes(68, 2));
  w.add_tensor("output.weight", tensor_type::q4_1, {32, 1}, random_bytes(20, 3));
  return w;
}

bytes_t small_file() { return small_writer().bytes(); }

class temp_dir {
 public:
  temp_dir() {
    path_ = std::filesystem::temp_directory_path() /
            ("gguf_reader_test." + std::to_string(::getpid()) + "." +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// --- types ---

TEST(gguf_types, block_layouts) {
  struct expected {
    tensor_type type;
    std::string_view name;
    uint32_t block_size, block_bytes;
  };
  for (const expected& e : std::vector<expected>{{tensor_type::f32, "F32", 1, 4},
                                                 {tensor_type::f16, "F16", 1, 2},
                                                 {tensor_type::bf16, "BF16", 1, 2},
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
                                                 {tensor_type::q8_k, "Q8_K", 256, 292}}) {
    const type_traits* t = find_type(static_cast<uint32_t>(e.type));
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->name, e.name);
    EXPECT_EQ(t->block_size, e.block_size) << e.name;
    EXPECT_EQ(t->block_bytes, e.block_bytes) << e.name;
  }
  EXPECT_EQ(static_cast<uint32_t>(tensor_type::bf16), 30u);
  EXPECT_EQ(find_type(4), nullptr);  // Q4_2, removed from ggml
  EXPECT_EQ(find_type(5), nullptr);
  EXPECT_EQ(find_type(31), nullptr);
  EXPECT_EQ(find_type(1000), nullptr);
  EXPECT_EQ(row_bytes(tensor_type::q4_k, 4096), 16u * 144u);
  EXPECT_EQ(row_bytes(tensor_type::q4_1, 576), 18u * 20u);
  EXPECT_EQ(row_bytes(tensor_type::q4_0, 16), std::nullopt);
  EXPECT_EQ(value_type_name(value_type::u32), "uint32");
}

// --- round trips ---

TEST(gguf_round_trip, every_value_type) {
  writer w;
  w.set("t.u8", value::u8(255));
  w.set("t.i8", value::i8(-128));
  w.set("t.u16", value::u16(65535));
  w.set("t.i16", value::i16(-32768));
  w.set("t.u32", value::u32(4000000000u));
  w.set("t.i32", value::i32(-2000000000));
  w.set("t.f32", value::f32(-0.15625f));
  w.set("t.bool_true", value::boolean(true));
  w.set("t.bool_false", value::boolean(false));
  w.set("t.string", value::string(std::string("caf\xc3\xa9 \0 nul", 11)));
  w.set("t.empty_string", value::string(""));
  w.set("t.u64", value::u64(std::numeric_limits<uint64_t>::max()));
  w.set("t.i64", value::i64(std::numeric_limits<int64_t>::min()));
  w.set("t.f64", value::f64(1e300));
  w.set("t.nan", value::f32(std::numeric_limits<float>::quiet_NaN()));
  w.set("a.u8", value::array(value_type::u8, {value::u8(1), value::u8(2)}));
  w.set("a.i8", value::array(value_type::i8, {value::i8(-1)}));
  w.set("a.u16", value::array(value_type::u16, {value::u16(1), value::u16(65535)}));
  w.set("a.i16", value::array(value_type::i16, {value::i16(-2)}));
  w.set("a.u32", value::array(value_type::u32, {value::u32(3)}));
  w.set("a.i32", value::i32_array(std::vector<int32_t>{1, -1, 3}));
  w.set("a.f32", value::f32_array(std::vector<float>{0.5f, -1.25f}));
  w.set("a.bool", value::array(value_type::boolean, {value::boolean(true), value::boolean(false)}));
  w.set("a.string", value::string_array({"a", "", "ccc"}));
  w.set("a.u64", value::array(value_type::u64, {value::u64(1ull << 63)}));
  w.set("a.i64", value::array(value_type::i64, {value::i64(-5)}));
  w.set("a.f64", value::array(value_type::f64, {value::f64(2.5)}));
  w.set("a.empty", value::array(value_type::u32, {}));
  // Three levels: [[[1, 2], []], [[3]]], then arrays of strings inside arrays.
  w.set("a.nested",
        value::array(
            value_type::array,
            {value::array(value_type::array,
                          {value::array(value_type::u32, {value::u32(1), value::u32(2)}),
                           value::array(value_type::u32, {})}),
             value::array(value_type::array, {value::array(value_type::u32, {value::u32(3)})})}));
  w.set("a.nested_strings",
        value::array(value_type::array, {value::string_array({"x", "yy"}), value::string_array({}),
                                         value::string_array({"zzz"})}));

  const bytes_t file = w.bytes();
  auto r = read(file);
  ASSERT_TRUE(r) << r.error().message;
  const reader& g = r.value();
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  ASSERT_EQ(g.metadata().size(), 30u);
  EXPECT_EQ(g.metadata()[0].key, "t.u8");  // file order
  EXPECT_EQ(g.metadata()[29].key, "a.nested_strings");
  EXPECT_TRUE(g.tensors().empty());

  EXPECT_EQ(g.get_u8("t.u8").value(), 255);
  EXPECT_EQ(g.get_i8("t.i8").value(), -128);
  EXPECT_EQ(g.get_u16("t.u16").value(), 65535);
  EXPECT_EQ(g.get_i16("t.i16").value(), -32768);
  EXPECT_EQ(g.get_u32("t.u32").value(), 4000000000u);
  EXPECT_EQ(g.get_i32("t.i32").value(), -2000000000);
  EXPECT_EQ(g.get_f32("t.f32").value(), -0.15625f);
  EXPECT_TRUE(g.get_bool("t.bool_true").value());
  EXPECT_FALSE(g.get_bool("t.bool_false").value());
  EXPECT_EQ(g.get_string("t.string").value(), std::string_view("caf\xc3\xa9 \0 nul", 11));
  EXPECT_EQ(g.get_string("t.empty_string").value(), "");
  EXPECT_EQ(g.get_u64("t.u64").value(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(g.get_i64("t.i64").value(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(g.get_f64("t.f64").value(), 1e300);
  EXPECT_TRUE(std::isnan(g.get_f32("t.nan").value()));

  EXPECT_THAT(g.get_array<uint8_t>("a.u8").value(), ElementsAre(1, 2));
  EXPECT_THAT(g.get_array<int8_t>("a.i8").value(), ElementsAre(-1));
  EXPECT_THAT(g.get_array<uint16_t>("a.u16").value(), ElementsAre(1, 65535));
  EXPECT_THAT(g.get_array<int16_t>("a.i16").value(), ElementsAre(-2));
  EXPECT_THAT(g.get_array<uint32_t>("a.u32").value(), ElementsAre(3u));
  EXPECT_THAT(g.get_array<int32_t>("a.i32").value(), ElementsAre(1, -1, 3));
  EXPECT_THAT(g.get_array<float>("a.f32").value(), ElementsAre(0.5f, -1.25f));
  EXPECT_THAT(g.get_array<bool>("a.bool").value(), ElementsAre(true, false));
  EXPECT_THAT(g.get_string_array("a.string").value(), ElementsAre("a", "", "ccc"));
  EXPECT_THAT(g.get_array<uint64_t>("a.u64").value(), ElementsAre(1ull << 63));
  EXPECT_THAT(g.get_array<int64_t>("a.i64").value(), ElementsAre(-5));
  EXPECT_THAT(g.get_array<double>("a.f64").value(), ElementsAre(2.5));
  EXPECT_TRUE(g.get_array<uint32_t>("a.empty").value().empty());

  const value_view nested = g.get_value("a.nested").value();
  ASSERT_EQ(nested.type(), value_type::array);
  EXPECT_EQ(nested.element_type(), value_type::array);
  ASSERT_EQ(nested.size(), 2u);
  EXPECT_EQ(nested.at(0).size(), 2u);
  EXPECT_THAT(nested.at(0).at(0).as_array<uint32_t>().value(), ElementsAre(1u, 2u));
  EXPECT_EQ(nested.at(0).at(1).size(), 0u);
  EXPECT_EQ(nested.at(1).at(0).at(0).as<uint32_t>(), 3u);
  EXPECT_THROW(nested.at(2), std::out_of_range);
  const value_view strings = g.get_value("a.nested_strings").value();
  EXPECT_THAT(strings.at(2).as_string_array().value(), ElementsAre("zzz"));
  EXPECT_THAT(strings.at(0).as_string_array().value(), ElementsAre("x", "yy"));
  EXPECT_THROW(strings.at(1).at(0), std::out_of_range);
}

TEST(gguf_round_trip, getter_errors_name_key_and_types) {
  const bytes_t file = small_file();
  const reader g = read(file).value();

  auto missing = g.get_u32("llama.missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, errc::not_found);
  EXPECT_THAT(missing.error().message, HasSubstr("'llama.missing'"));

  auto wrong = g.get_i32("llama.block_count");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, errc::wrong_type);
  EXPECT_THAT(wrong.error().message, HasSubstr("'llama.block_count' is uint32, expected int32"));

  auto wrong_array = g.get_array<int32_t>("tokenizer.ggml.scores");
  ASSERT_FALSE(wrong_array);
  EXPECT_EQ(wrong_array.error().code, errc::wrong_type);
  EXPECT_THAT(wrong_array.error().message,
              HasSubstr("'tokenizer.ggml.scores' is array of float32, expected array of int32"));

  auto not_array = g.get_string_array("general.name");
  ASSERT_FALSE(not_array);
  EXPECT_THAT(not_array.error().message, HasSubstr("is string, expected array of string"));

  EXPECT_EQ(g.get_uint("llama.block_count").value(), 2u);
  EXPECT_EQ(g.get_uint("general.name").error().code, errc::wrong_type);

  auto tensor = g.find_tensor("nope.weight");
  ASSERT_FALSE(tensor);
  EXPECT_EQ(tensor.error().code, errc::not_found);
  EXPECT_THAT(tensor.error().message, HasSubstr("tensor 'nope.weight' not found"));
}

TEST(gguf_round_trip, get_uint_accepts_any_non_negative_integer) {
  writer w;
  w.set("u8", value::u8(7));
  w.set("i32", value::i32(12));
  w.set("neg", value::i64(-1));
  const bytes_t file = w.bytes();
  const reader g = read(file).value();
  EXPECT_EQ(g.get_uint("u8").value(), 7u);
  EXPECT_EQ(g.get_uint("i32").value(), 12u);
  EXPECT_EQ(g.get_uint("neg").error().code, errc::bad_value);
}

TEST(gguf_round_trip, tensors_of_several_types_and_alignments) {
  struct spec {
    std::string name;
    tensor_type type;
    std::vector<uint64_t> dims;
    uint64_t n_bytes;
  };
  const std::vector<spec> specs{
      {"f32", tensor_type::f32, {4, 3}, 48},
      {"f16", tensor_type::f16, {8, 2}, 32},
      {"bf16", tensor_type::bf16, {6}, 12},
      {"q4_1", tensor_type::q4_1, {64, 2}, 2 * 2 * 20},
      {"q8_0", tensor_type::q8_0, {32, 3}, 3 * 34},
      {"q4_k", tensor_type::q4_k, {256, 2}, 2 * 144},
      {"q6_k", tensor_type::q6_k, {512, 1, 2}, 2 * 210 * 2},
      {"q4_0.4d", tensor_type::q4_0, {32, 1, 1, 2}, 2 * 18},
  };
  temp_dir dir;
  for (uint32_t alignment : {1u, 8u, 32u, 64u, 4096u}) {
    SCOPED_TRACE("alignment " + std::to_string(alignment));
    writer w;
    if (alignment != 32) w.set_alignment(alignment);
    std::vector<bytes_t> data;
    for (size_t i = 0; i < specs.size(); ++i) {
      data.push_back(random_bytes(specs[i].n_bytes, static_cast<uint32_t>(i)));
      w.add_tensor(specs[i].name, specs[i].type, specs[i].dims, data.back());
    }
    const auto path = dir.path() / ("a" + std::to_string(alignment) + ".gguf");
    ASSERT_TRUE(w.write_file(path));
    auto r = reader::open(path);
    ASSERT_TRUE(r) << r.error().message;
    const reader& g = r.value();
    EXPECT_EQ(g.alignment(), alignment);
    EXPECT_EQ(g.data_offset() % alignment, 0u);
    ASSERT_EQ(g.tensors().size(), specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      const spec& s = specs[i];
      SCOPED_TRACE(s.name);
      const tensor_info t = g.find_tensor(s.name).value();
      EXPECT_EQ(t.name, s.name);
      EXPECT_EQ(g.tensors()[i].name, s.name);  // file order
      EXPECT_EQ(t.type, s.type);
      EXPECT_EQ(std::vector<uint64_t>(t.dims().begin(), t.dims().end()), s.dims);
      uint64_t n = 1;
      for (uint64_t d : s.dims) n *= d;
      EXPECT_EQ(t.n_elements, n);
      EXPECT_EQ(t.n_bytes, s.n_bytes);
      EXPECT_EQ(t.row_bytes(), *row_bytes(s.type, s.dims[0]));
      EXPECT_EQ(t.offset % alignment, 0u);
      const auto file_offset = static_cast<uint64_t>(t.data.data() - g.bytes().data());
      EXPECT_EQ(file_offset, g.data_offset() + t.offset);
      // The mapping is page-aligned, so the data is aligned in memory too.
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data.data()) % alignment, 0u);
      ASSERT_EQ(t.data.size(), s.n_bytes);
      EXPECT_EQ(std::memcmp(t.data.data(), data[i].data(), s.n_bytes), 0);
    }
  }
}

TEST(gguf_round_trip, versions_2_and_3_read_the_same) {
  const bytes_t v2 = small_writer(2).bytes();
  const bytes_t v3 = small_writer(3).bytes();
  EXPECT_EQ(peek<uint32_t>(v2, 4), 2u);
  EXPECT_EQ(peek<uint32_t>(v3, 4), 3u);
  const reader a = read(v2).value();
  const reader b = read(v3).value();
  EXPECT_EQ(a.version(), 2u);
  EXPECT_EQ(b.version(), 3u);
  EXPECT_EQ(a.metadata().size(), b.metadata().size());
  EXPECT_EQ(a.architecture().value(), "llama");
  EXPECT_EQ(b.architecture().value(), "llama");
  EXPECT_EQ(a.get_string_array("tokenizer.ggml.tokens").value(),
            b.get_string_array("tokenizer.ggml.tokens").value());
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    EXPECT_EQ(a.tensors()[i].name, b.tensors()[i].name);
    EXPECT_EQ(a.tensors()[i].offset, b.tensors()[i].offset);
  }
}

TEST(gguf_round_trip, strings_are_views_into_the_file) {
  const bytes_t file = small_file();
  const reader g = read(file).value();
  const auto tokens = g.get_string_array("tokenizer.ggml.tokens").value();
  ASSERT_THAT(tokens, ElementsAre("<s>", "</s>", "hello", "world"));
  const auto* begin = reinterpret_cast<const char*>(file.data());
  for (std::string_view t : tokens) {
    EXPECT_GE(t.data(), begin);
    EXPECT_LE(t.data() + t.size(), begin + file.size());
  }
  EXPECT_EQ(g.get_array<float>("tokenizer.ggml.scores").value()[2], -2.5f);
}

TEST(gguf_round_trip, moved_reader_keeps_its_views) {
  temp_dir dir;
  ASSERT_TRUE(small_writer().write_file(dir.path() / "m.gguf"));
  auto r = reader::open(dir.path() / "m.gguf");
  ASSERT_TRUE(r);
  reader moved = std::move(r).value();
  EXPECT_EQ(moved.get_string("general.name").value(), "tiny-model");
  EXPECT_EQ(moved.find_tensor("output.weight").value().n_bytes, 20u);
}

// --- opening ---

TEST(gguf_open, missing_file_is_not_found) {
  auto r = reader::open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::not_found);
  EXPECT_THAT(r.error().message, HasSubstr("/nonexistent/dir/model.gguf"));
}

TEST(gguf_open, directory_is_an_io_error) {
  temp_dir dir;
  auto r = reader::open(dir.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::io_error);
  EXPECT_THAT(r.error().message, HasSubstr("not a regular file"));
}

TEST(gguf_open, empty_file_is_truncated) {
  temp_dir dir;
  std::ofstream(dir.path() / "empty.gguf").close();
  auto r = reader::open(dir.path() / "empty.gguf");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::truncated);
  EXPECT_THAT(r.error().message, HasSubstr("empty.gguf: header: file is 0 bytes"));
}

// --- corruption: header ---

TEST(gguf_corrupt, bad_magic) {
  bytes_t b = small_file();
  b[0] = std::byte{'X'};
  expect_error(read(b), errc::bad_magic, {"header", "magic 'XGUF' at offset 0"});
}

TEST(gguf_corrupt, version_1_is_rejected) {
  bytes_t b = small_file();
  patch<uint32_t>(b, 4, 1);
  expect_error(read(b), errc::unsupported_version, {"version 1 at offset 4", "v1"});
}

TEST(gguf_corrupt, version_99_is_rejected) {
  bytes_t b = small_file();
  patch<uint32_t>(b, 4, 99);
  expect_error(read(b), errc::unsupported_version, {"version 99 at offset 4"});
}

TEST(gguf_corrupt, big_endian_is_recognised) {
  bytes_t b = small_file();
  patch<uint32_t>(b, 4, 0x03000000);
  expect_error(read(b), errc::unsupported_version, {"big-endian"});
}

TEST(gguf_corrupt, huge_counts) {
  bytes_t b = small_file();
  patch<uint64_t>(b, 16, uint64_t{1} << 60);
  expect_error(read(b), errc::bad_count, {"metadata key count 1152921504606846976 at offset 16"});
  b = small_file();
  patch<uint64_t>(b, 8, 1000000);
  expect_error(read(b), errc::bad_count, {"tensor count 1000000 at offset 8"});
}

// Every strict prefix of a file that ends with tensor data is an error;
// nothing reads past the end (the copy has exactly the prefix's size, so
// AddressSanitizer would see an overrun).
TEST(gguf_corrupt, every_truncation_is_an_error) {
  const bytes_t full = small_file();
  const reader g = read(full).value();
  uint64_t end = 0;  // of the last tensor's data; only padding follows
  for (const tensor_info& t : g.tensors())
    end = std::max(end, g.data_offset() + t.offset + t.n_bytes);
  for (size_t n = 0; n <= full.size(); ++n) {
    const bytes_t prefix(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    auto r = read(prefix);
    if (n < end) {
      ASSERT_FALSE(r) << "prefix of " << n << " bytes";
      EXPECT_THAT(r.error().message, HasSubstr("test.gguf: "));
      const std::error_code code = r.error().code;
      EXPECT_TRUE(code == errc::truncated || code == errc::bad_string || code == errc::bad_count ||
                  code == errc::bad_tensor)
          << n << ": " << r.error().message;
    } else {
      EXPECT_TRUE(r) << n << ": " << r.error().message;
    }
  }
}

// --- corruption: metadata ---

TEST(gguf_corrupt, string_length_past_the_file) {
  bytes_t b = small_file();
  const size_t at = find(b, "tiny-model") - 8;
  patch<uint64_t>(b, at, 0xffffffff);
  expect_error(read(b), errc::bad_string,
               {"metadata key #1 'general.name'",
                "string length 4294967295 at offset " + std::to_string(at), "exceeds the file"});
}

TEST(gguf_corrupt, key_length_past_the_file) {
  bytes_t b = small_file();
  patch<uint64_t>(b, 24, uint64_t{1} << 62);
  expect_error(read(b), errc::bad_string, {"metadata key #0: key length", "at offset 24"});
}

TEST(gguf_corrupt, string_in_array_past_the_file) {
  bytes_t b = small_file();
  const size_t at = find(b, "hello") - 8;
  patch<uint64_t>(b, at, 1000000);
  expect_error(read(b), errc::bad_string,
               {"'tokenizer.ggml.tokens' element [2]", "string length 1000000"});
}

TEST(gguf_corrupt, huge_array_count) {
  bytes_t b = small_file();
  const size_t at = value_offset(b, "tokenizer.ggml.tokens") + 4;  // after the element type
  ASSERT_EQ(peek<uint64_t>(b, at), 4u);
  patch<uint64_t>(b, at, 0xffffffffffffull);
  expect_error(
      read(b), errc::bad_count,
      {"metadata key #4 'tokenizer.ggml.tokens'",
       "array length 281474976710655 at offset " + std::to_string(at), "exceeds the file"});
}

TEST(gguf_corrupt, unknown_value_type) {
  bytes_t b = small_file();
  const size_t at = value_offset(b, "general.name") - 4;
  patch<uint32_t>(b, at, 13);
  expect_error(read(b), errc::bad_type,
               {"'general.name'", "value type 13 at offset " + std::to_string(at), "unknown"});
}

TEST(gguf_corrupt, unknown_array_element_type) {
  bytes_t b = small_file();
  patch<uint32_t>(b, value_offset(b, "tokenizer.ggml.scores"), 77);
  expect_error(read(b), errc::bad_type, {"'tokenizer.ggml.scores'", "array element type 77"});
}

TEST(gguf_corrupt, bool_out_of_range) {
  bytes_t b = small_file();
  patch<uint8_t>(b, value_offset(b, "llama.use_parallel"), 2);
  expect_error(read(b), errc::bad_value, {"'llama.use_parallel'", "bool 2"});
}

TEST(gguf_corrupt, nesting_depth_is_bounded) {
  auto nested = [](int levels) {
    value v = value::array(value_type::u8, {value::u8(1)});
    for (int i = 1; i < levels; ++i) v = value::array(value_type::array, {std::move(v)});
    writer w;
    w.set("deep", std::move(v));
    return w.bytes();
  };
  const bytes_t ok = nested(8);
  EXPECT_TRUE(read(ok));
  const bytes_t too_deep = nested(9);
  expect_error(read(too_deep), errc::bad_value,
               {"'deep' element [0][0][0][0][0][0][0]", "nested deeper than 8"});
}

TEST(gguf_corrupt, duplicate_key) {
  writer w;
  w.set("dup.key.a", value::u32(1));
  w.set("dup.key.b", value::u32(2));
  bytes_t b = w.bytes();
  b[find(b, "dup.key.b") + 8] = std::byte{'a'};
  expect_error(read(b), errc::duplicate_key,
               {"metadata key #1 'dup.key.a'", "repeats metadata key #0 at offset 24"});
}

TEST(gguf_corrupt, alignment) {
  writer w;
  w.set_alignment(64);
  w.add_tensor("t", tensor_type::f32, {4}, random_bytes(16, 1));
  const bytes_t good = w.bytes();
  ASSERT_EQ(read(good).value().alignment(), 64u);
  const size_t at = value_offset(good, "general.alignment");
  for (uint32_t bad : {0u, 3u, 48u}) {
    bytes_t b = good;
    patch<uint32_t>(b, at, bad);
    expect_error(read(b), errc::bad_alignment,
                 {"'general.alignment'", "alignment " + std::to_string(bad) + " at offset " +
                                             std::to_string(at) + " is not a power of two"});
  }
  bytes_t b = good;
  patch<uint32_t>(b, at - 4, static_cast<uint32_t>(value_type::i32));
  expect_error(read(b), errc::bad_alignment, {"'general.alignment'", "is int32, expected uint32"});
}

// --- corruption: tensors ---

TEST(gguf_corrupt, unknown_tensor_type) {
  for (uint32_t code : {4u, 31u, 1000u}) {
    bytes_t b = small_file();
    const tensor_fields f = tensor_at(b, "blk.0.attn_q.weight");
    ASSERT_EQ(peek<uint32_t>(b, f.type), static_cast<uint32_t>(tensor_type::q8_0));
    patch<uint32_t>(b, f.type, code);
    expect_error(read(b), errc::bad_type,
                 {"tensor #1 'blk.0.attn_q.weight'",
                  "tensor type " + std::to_string(code) + " at offset " + std::to_string(f.type)});
  }
}

TEST(gguf_corrupt, tensor_data_out_of_range) {
  bytes_t b = small_file();
  const tensor_fields f = tensor_at(b, "output.weight");
  patch<uint64_t>(b, f.offset, 32 * 1000000);
  expect_error(
      read(b), errc::bad_tensor,
      {"tensor #2 'output.weight'", "data offset 32000000", "runs past the end of the file"});

  // An offset near 2^64 must not wrap around into the file.
  b = small_file();
  patch<uint64_t>(b, f.offset, ~uint64_t{31});
  expect_error(read(b), errc::bad_tensor, {"'output.weight'", "runs past the end"});

  // Dimensions larger than the data that follows.
  b = small_file();
  patch<uint64_t>(b, f.dims + 8, 1000);
  expect_error(read(b), errc::bad_tensor, {"'output.weight'", "20000 bytes"});
}

TEST(gguf_corrupt, misaligned_tensor_offset) {
  bytes_t b = small_file();
  const tensor_fields f = tensor_at(b, "output.weight");
  const auto offset = peek<uint64_t>(b, f.offset);
  patch<uint64_t>(b, f.offset, offset + 4);
  expect_error(read(b), errc::bad_alignment,
               {"tensor #2 'output.weight'", "data offset " + std::to_string(offset + 4) +
                                                 " at offset " + std::to_string(f.offset) +
                                                 " is not a multiple of the alignment 32"});
}

TEST(gguf_corrupt, overlapping_tensors) {
  bytes_t b = small_file();
  const tensor_fields f = tensor_at(b, "output.weight");
  patch<uint64_t>(b, f.offset, 0);
  expect_error(read(b), errc::bad_tensor,
               {"'output.weight'", "overlaps tensor 'token_embd.weight'"});
}

TEST(gguf_corrupt, duplicate_tensor_name) {
  writer w;
  w.add_tensor("dup.tensor.a", tensor_type::f32, {4}, random_bytes(16, 1));
  w.add_tensor("dup.tensor.b", tensor_type::f32, {4}, random_bytes(16, 2));
  bytes_t b = w.bytes();
  b[find(b, "dup.tensor.b") + 11] = std::byte{'a'};
  expect_error(read(b), errc::duplicate_tensor, {"tensor #1 'dup.tensor.a'", "repeats tensor #0"});
}

TEST(gguf_corrupt, zero_dimension) {
  bytes_t b = small_file();
  const tensor_fields f = tensor_at(b, "blk.0.attn_q.weight");
  patch<uint64_t>(b, f.dims + 8, 0);
  expect_error(read(b), errc::bad_tensor,
               {"tensor #1 'blk.0.attn_q.weight'",
                "dimension 1 at offset " + std::to_string(f.dims + 8) + " is 0"});
}

TEST(gguf_corrupt, dimension_count) {
  for (uint32_t n : {0u, 5u, 0xffffffffu}) {
    bytes_t b = small_file();
    const tensor_fields f = tensor_at(b, "token_embd.weight");
    patch<uint32_t>(b, f.n_dims, n);
    expect_error(read(b), errc::bad_tensor,
                 {"tensor #0 'token_embd.weight'", "n_dims " + std::to_string(n) + " at offset"});
  }
}

TEST(gguf_corrupt, row_not_whole_blocks) {
  bytes_t b = small_file();
  const tensor_fields f = tensor_at(b, "blk.0.attn_q.weight");
  patch<uint64_t>(b, f.dims, 16);
  expect_error(
      read(b), errc::bad_tensor,
      {"'blk.0.attn_q.weight'", "row length 16 is not a multiple of the Q8_0 block size 32"});
}

TEST(gguf_corrupt, dimension_product_overflow) {
  bytes_t b = small_file();
  const tensor_fields f = tensor_at(b, "token_embd.weight");
  patch<uint64_t>(b, f.dims, uint64_t{1} << 40);
  patch<uint64_t>(b, f.dims + 8, uint64_t{1} << 40);
  expect_error(read(b), errc::bad_tensor, {"'token_embd.weight'", "overflow"});

  // Elements fit, bytes do not: 2^62 F32 elements.
  b = small_file();
  patch<uint64_t>(b, f.dims, uint64_t{1} << 31);
  patch<uint64_t>(b, f.dims + 8, uint64_t{1} << 31);
  expect_error(read(b), errc::bad_tensor, {"'token_embd.weight'", "overflows 64 bits"});
}

TEST(gguf_corrupt, tensor_name_too_long) {
  writer w;
  w.add_tensor(std::string(65, 'n'), tensor_type::f32, {1}, random_bytes(4, 1));
  const bytes_t b = w.bytes();
  expect_error(read(b), errc::bad_string, {"tensor #0", "exceeds the GGUF limit of 64"});
}

// --- fuzzing ---

// Walks everything a reader exposes, so the sanitizers see any bad view.
size_t touch(const value_view& v) {
  size_t sum = 0;
  switch (v.type()) {
    case value_type::string:
      return v.as<std::string_view>()->size();
    case value_type::array: {
      if (auto s = v.as_string_array()) {
        for (std::string_view x : *s) sum += x.empty() ? 0 : static_cast<unsigned char>(x.back());
      }
      for (uint64_t i = 0; i < v.size() && i < 64; ++i) sum += touch(v.at(i));
      return sum;
    }
    case value_type::boolean:
      return *v.as<bool>();
    case value_type::u8:
      return *v.as<uint8_t>();
    case value_type::f64:
      return std::isnan(*v.as<double>()) ? 1 : 0;
    default:
      return 1;
  }
}

volatile size_t sink = 0;

TEST(gguf_fuzz, flipped_bytes_never_crash) {
  const bytes_t good = small_file();
  const uint64_t header_end = read(good).value().data_offset();
  std::mt19937 rng(20240611);
  int accepted = 0;
  std::map<std::string, int> codes;
  for (int iteration = 0; iteration < 4000; ++iteration) {
    bytes_t b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      // Mostly in the structure: flips in tensor data are always accepted.
      const uint64_t span = rng() % 4 != 0 ? header_end : b.size();
      const size_t at = rng() % span;
      switch (rng() % 3) {
        case 0:
          b[at] ^= static_cast<std::byte>(1u << (rng() % 8));
          break;
        case 1:
          b[at] = static_cast<std::byte>(rng() & 0xff);
          break;
        default:
          b[at] = std::byte{0xff};
          break;
      }
    }
    auto r = read(b);
    if (!r) {
      EXPECT_THAT(r.error().message, HasSubstr("test.gguf: "));
      ++codes[r.error().code.message()];
      continue;
    }
    ++accepted;
    const reader& g = r.value();
    size_t sum = 0;
    for (const metadata_entry& e : g.metadata()) sum += touch(e.value) + e.key.size();
    for (const tensor_info& t : g.tensors()) {
      ASSERT_TRUE(g.find_tensor(t.name));
      ASSERT_EQ(t.data.size(), t.n_bytes);
      sum += static_cast<size_t>(t.data.front()) + static_cast<size_t>(t.data.back());
    }
    (void)g.architecture();
    (void)g.get_string_array("tokenizer.ggml.tokens");
    (void)g.get_array<float>("tokenizer.ggml.scores");
    sink = sink + sum;  // keeps the reads from being optimised away
  }
  std::printf("fuzz: %d of 4000 mutated files accepted; errors:", accepted);
  for (const auto& [code, n] : codes) std::printf(" %s=%d", code.c_str(), n);
  std::printf("\n");
}

// --- the real model ---

std::filesystem::path model_path() {
  if (const char* env = std::getenv("TRIAGE_MODEL"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : "") /
         ".cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

TEST(gguf_real_model, smollm2_135m) {
  const std::filesystem::path path = model_path();
  if (!std::filesystem::exists(path)) {
    GTEST_SKIP() << path << " not found (set TRIAGE_MODEL, or install the model as CI does)";
  }
  const auto start = std::chrono::steady_clock::now();
  auto r = reader::open(path);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r) << r.error().message;
  const reader& g = r.value();
  std::printf("opened %s (%zu bytes, GGUF v%u, %zu keys, %zu tensors) in %.2f ms\n", path.c_str(),
              g.bytes().size(), g.version(), g.metadata().size(), g.tensors().size(),
              std::chrono::duration<double, std::milli>(elapsed).count());

  EXPECT_EQ(g.architecture().value(), "llama");
  EXPECT_EQ(g.get_u32("llama.block_count").value(), 30u);
  EXPECT_EQ(g.get_u32("llama.embedding_length").value(), 576u);
  const auto tokens = g.get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens) << tokens.error().message;
  EXPECT_EQ(tokens.value().size(), 49152u);
  if (g.contains("tokenizer.ggml.token_type")) {
    EXPECT_EQ(g.get_array<int32_t>("tokenizer.ggml.token_type").value().size(), 49152u);
  }

  const auto embd = g.find_tensor("token_embd.weight");
  ASSERT_TRUE(embd) << embd.error().message;
  EXPECT_THAT(std::vector<uint64_t>(embd.value().dims().begin(), embd.value().dims().end()),
              ElementsAre(576u, 49152u));

  std::map<std::string_view, int> types;
  for (const tensor_info& t : g.tensors()) ++types[type_name(t.type)];
  std::printf("tensor types:");
  for (const auto& [name, n] : types)
    std::printf(" %.*s=%d", static_cast<int>(name.size()), name.data(), n);
  std::printf("\ntoken_embd.weight: %s\n", std::string(type_name(embd.value().type)).c_str());
}

}  // namespace
}  // namespace triage::gguf
