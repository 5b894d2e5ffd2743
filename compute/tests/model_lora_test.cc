// LoRA adapters (compute/model/lora.h).
//
// On tiny llama models written here: the merge equals a twin model whose F32
// weights are dequantize(W) + s * B A computed in double; alpha, rank and the
// scale combine as llama.cpp's get_scale does; scale 0 is the base model; two
// adapters add up; and every malformed or mismatched adapter fails with an
// error naming the key or tensor.
//
// Built twice (compute/CMakeLists.txt): model_lora_test (label fast) runs
// the tiny-model tests; model_lora_smollm2_test (label model, built with
// TRIAGE_LORA_SMOLLM2; ~4 min under ASan+Debug, so Release only) runs the
// real model: on the SmolLM2-135M Q4_1 file, an adapter the test writes itself
// (rank 8 on attn_q, attn_v and ffn_down of all 30 layers, values from the
// counter-based hash of compute/tests/golden/make_lora.py, bit for bit)
// against llama.cpp's logits with the same adapter (lora_logits.json,
// lora_logits_f16.bin from make_lora.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "compute/cpu/dequantize.h"
#include "compute/cpu/half.h"
#include "compute/cpu/quantize.h"
#include "compute/gguf/writer.h"
#include "compute/model/errc.h"
#include "compute/model/lora.h"
#include "compute/model/model.h"
#include "compute/tests/test_files.h"

namespace {

using triage::gguf::tensor_type;
using triage::gguf::value;
using triage::model::errc;
using triage::model::lora_spec;
using triage::model::model;
using triage::test_files::golden_dir;
using triage::test_files::model_path;

// Uniform in [-0.5, 0.5): the low 24 bits of a splitmix64-style hash of
// (tensor, element). The same arithmetic as value() in make_lora.py.
float hash_value(uint64_t tensor, uint64_t i) {
  uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ull + tensor * 0xBF58476D1CE4E5B9ull;
  h ^= h >> 31;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 29;
  return static_cast<float>(h & 0xFFFFFFull) * (1.0f / 16777216.0f) - 0.5f;
}

std::vector<float> hash_matrix(uint64_t tensor, int64_t rows, int64_t cols, float gain) {
  std::vector<float> m(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < m.size(); ++i) m[i] = hash_value(tensor, i) * gain;
  return m;
}

std::span<const std::byte> bytes_of(const std::vector<float>& v) {
  return std::as_bytes(std::span<const float>(v));
}

class temp_file {
 public:
  explicit temp_file(const std::string& tag)
      : path_(std::filesystem::temp_directory_path() /
              ("triage_lora_" + tag + "_" + std::to_string(::getpid()) + ".gguf")) {}
  ~temp_file() { std::filesystem::remove(path_); }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

#ifndef TRIAGE_LORA_SMOLLM2

// --- tiny models ---

constexpr int tiny_dim = 64, tiny_heads = 4, tiny_kv_heads = 2, tiny_ffn = 128, tiny_vocab = 96,
              tiny_layers = 2;

struct matrix_spec {
  std::string name;
  int rows, cols;
  float gain;
};

std::vector<matrix_spec> tiny_matrices() {
  const int hd = tiny_dim / tiny_heads;
  std::vector<matrix_spec> out{{"token_embd.weight", tiny_vocab, tiny_dim, 8.0f},
                               {"output.weight", tiny_vocab, tiny_dim, 4.0f}};
  for (int l = 0; l < tiny_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    out.push_back({p + "attn_q.weight", tiny_heads * hd, tiny_dim, 2.0f});
    out.push_back({p + "attn_k.weight", tiny_kv_heads * hd, tiny_dim, 2.0f});
    out.push_back({p + "attn_v.weight", tiny_kv_heads * hd, tiny_dim, 1.0f});
    out.push_back({p + "attn_output.weight", tiny_dim, tiny_heads * hd, 0.5f});
    out.push_back({p + "ffn_gate.weight", tiny_ffn, tiny_dim, 1.0f});
    out.push_back({p + "ffn_up.weight", tiny_ffn, tiny_dim, 1.0f});
    out.push_back({p + "ffn_down.weight", tiny_dim, tiny_ffn, 0.5f});
  }
  return out;
}

// The matrix values of the tiny model, as stored (after a round trip
// through `type`): name -> (rows * cols) floats.
using tiny_values = std::vector<std::pair<std::string, std::vector<float>>>;

tiny_values tiny_weights(tensor_type type) {
  tiny_values out;
  uint64_t id = 1000;
  for (const auto& m : tiny_matrices()) {
    auto v = hash_matrix(id++, m.rows, m.cols, 2.0f * m.gain / std::sqrt(float(m.cols)));
    const auto q = triage::cpu::quantize_weights(type, v, m.rows, m.cols);
    const size_t rb = q.size() / static_cast<size_t>(m.rows);
    for (int r = 0; r < m.rows; ++r) {
      triage::cpu::dequantize_row(type, q.data() + r * rb, v.data() + size_t(r) * m.cols, m.cols);
    }
    out.emplace_back(m.name, std::move(v));
  }
  return out;
}

// Writes the tiny model with its matrices as `type`, or as F32 holding
// `f32_values` (a twin with other weights) when given.
void write_tiny(const std::string& path, tensor_type type, const tiny_values* f32_values = nullptr) {
  triage::gguf::writer w;
  w.set("general.architecture", value::string("llama"));
  w.set("llama.block_count", value::u32(tiny_layers));
  w.set("llama.embedding_length", value::u32(tiny_dim));
  w.set("llama.feed_forward_length", value::u32(tiny_ffn));
  w.set("llama.attention.head_count", value::u32(tiny_heads));
  w.set("llama.attention.head_count_kv", value::u32(tiny_kv_heads));
  w.set("llama.context_length", value::u32(256));
  w.set("llama.attention.layer_norm_rms_epsilon", value::f32(1e-5f));
  w.set("llama.rope.freq_base", value::f32(10000.0f));
  w.set("tokenizer.ggml.eos_token_id", value::u32(2));
  const auto specs = tiny_matrices();
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& m = specs[i];
    const std::vector<uint64_t> dims{uint64_t(m.cols), uint64_t(m.rows)};
    if (f32_values != nullptr) {
      w.add_tensor(m.name, tensor_type::f32, dims, bytes_of((*f32_values)[i].second));
    } else {
      auto q = triage::cpu::quantize_weights(type, hash_matrix(1000 + i, m.rows, m.cols,
                                                               2.0f * m.gain / std::sqrt(float(m.cols))),
                                             m.rows, m.cols);
      w.add_tensor(m.name, type, dims, q);
    }
  }
  std::vector<float> ones(tiny_dim);
  for (int i = 0; i < tiny_dim; ++i) ones[size_t(i)] = 1.0f + 0.1f * hash_value(7, uint64_t(i));
  w.add_tensor("output_norm.weight", tensor_type::f32, {uint64_t(tiny_dim)}, bytes_of(ones));
  for (int l = 0; l < tiny_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    w.add_tensor(p + "attn_norm.weight", tensor_type::f32, {uint64_t(tiny_dim)}, bytes_of(ones));
    w.add_tensor(p + "ffn_norm.weight", tensor_type::f32, {uint64_t(tiny_dim)}, bytes_of(ones));
  }
  auto ok = w.write_file(path);
  ASSERT_TRUE(ok) << ok.error().what();
}

// --- adapters ---

struct lora_pair_spec {
  std::string target;
  int n_out, n_in;
  int rank = 4;
  // Damage, for the error tests.
  int a_extra_in = 0;   // lora_a written with a wider n_in
  int b_extra_out = 0;  // lora_b written with more rows
  int b_rank = -1;      // lora_b written with another rank
  bool drop_a = false, drop_b = false;
};

struct adapter_spec {
  std::vector<lora_pair_spec> pairs;
  std::string general_type = "adapter";  // "" drops the key
  std::string adapter_type = "lora";
  std::string arch = "llama";
  bool has_alpha = true;
  float alpha = 8.0f;
  bool alpha_as_u32 = false;
  uint64_t seed = 1;
  float gain_a = 0.25f, gain_b = 0.125f;
  tensor_type type = tensor_type::f32;
  std::vector<std::string> extra_tensors;  // 1-D tensors of 4 floats
};

// A (rank, n_in) and B (n_out, rank) as written (after a round trip
// through the adapter's type), row-major.
struct pair_values {
  std::vector<float> a, b;
};

std::vector<float> round_trip(tensor_type t, std::vector<float> x, int rows, int cols) {
  const auto q = triage::cpu::quantize_weights(t, x, rows, cols);
  const size_t rb = q.size() / static_cast<size_t>(rows);
  for (int r = 0; r < rows; ++r) {
    triage::cpu::dequantize_row(t, q.data() + r * rb, x.data() + size_t(r) * cols, cols);
  }
  return x;
}

pair_values values_of(const adapter_spec& s, size_t k) {
  const auto& p = s.pairs[k];
  const int b_rank = p.b_rank >= 0 ? p.b_rank : p.rank;
  const int n_in = p.n_in + p.a_extra_in, n_out = p.n_out + p.b_extra_out;
  return {round_trip(s.type, hash_matrix(s.seed * 100000 + 2 * k, p.rank, n_in, s.gain_a),
                     p.rank, n_in),
          round_trip(s.type, hash_matrix(s.seed * 100000 + 2 * k + 1, n_out, b_rank, s.gain_b),
                     n_out, b_rank)};
}

void write_adapter(const std::string& path, const adapter_spec& s) {
  triage::gguf::writer w;
  w.set("general.architecture", value::string(s.arch));
  if (!s.general_type.empty()) w.set("general.type", value::string(s.general_type));
  if (!s.adapter_type.empty()) w.set("adapter.type", value::string(s.adapter_type));
  if (s.has_alpha) {
    w.set("adapter.lora.alpha",
          s.alpha_as_u32 ? value::u32(uint32_t(s.alpha)) : value::f32(s.alpha));
  }
  for (size_t k = 0; k < s.pairs.size(); ++k) {
    const auto& p = s.pairs[k];
    const auto v = values_of(s, k);
    const int b_rank = p.b_rank >= 0 ? p.b_rank : p.rank;
    const auto put = [&](const std::string& name, const std::vector<float>& x, int rows, int cols) {
      const auto q = triage::cpu::quantize_weights(s.type, x, rows, cols);
      w.add_tensor(name, s.type, {uint64_t(cols), uint64_t(rows)}, q);
    };
    if (!p.drop_a) put(p.target + ".lora_a", v.a, p.rank, p.n_in + p.a_extra_in);
    if (!p.drop_b) put(p.target + ".lora_b", v.b, p.n_out + p.b_extra_out, b_rank);
  }
  const std::vector<float> four{1, 2, 3, 4};
  for (const auto& name : s.extra_tensors) w.add_tensor(name, tensor_type::f32, {4}, bytes_of(four));
  auto ok = w.write_file(path);
  ASSERT_TRUE(ok) << ok.error().what();
}

// Every matrix of every block, and output.weight.
adapter_spec all_targets_spec() {
  adapter_spec s;
  for (const auto& m : tiny_matrices()) {
    if (m.name == "token_embd.weight") continue;
    s.pairs.push_back({m.name, m.rows, m.cols});
  }
  return s;
}

// The tiny weights with the adapters merged in double: W + s * B A.
tiny_values merged_in_double(tiny_values w, const std::vector<std::pair<adapter_spec, float>>& ads) {
  for (const auto& [s, scale] : ads) {
    for (size_t k = 0; k < s.pairs.size(); ++k) {
      const auto& p = s.pairs[k];
      const auto v = values_of(s, k);
      const double f = s.has_alpha && s.alpha != 0.0f ? double(scale) * s.alpha / p.rank : scale;
      auto it = std::find_if(w.begin(), w.end(), [&](const auto& e) { return e.first == p.target; });
      EXPECT_NE(it, w.end()) << p.target;
      if (it == w.end()) continue;
      for (int o = 0; o < p.n_out; ++o) {
        for (int i = 0; i < p.n_in; ++i) {
          double d = 0;
          for (int r = 0; r < p.rank; ++r) {
            d += double(v.b[size_t(o) * p.rank + r]) * v.a[size_t(r) * p.n_in + i];
          }
          float& x = it->second[size_t(o) * p.n_in + i];
          x = float(double(x) + f * d);
        }
      }
    }
  }
  return w;
}

const std::vector<std::vector<int32_t>> tiny_seqs{{5, 17, 42, 7, 90, 60, 3}, {1}, {95, 0, 12, 12, 8, 64}};

std::vector<float> tiny_logits(const std::string& model_file, std::vector<lora_spec> loras = {},
                               bool f16 = false) {
  auto m = model::load(model_file, {.threads = 2, .loras = std::move(loras), .lora_f16 = f16});
  EXPECT_TRUE(m) << (m ? "" : m.error().what());
  if (!m) return {};
  return m.value().forward(tiny_seqs, {.all_logits = true}).all_logits;
}

double max_rel_diff(const std::vector<float>& x, const std::vector<float>& ref) {
  double scale = 0, diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::fabs(double(ref[i])));
    diff = std::max(diff, std::fabs(double(x[i]) - ref[i]));
  }
  return diff / scale;
}

// The merge (F32, float arithmetic) against the same update computed in
// double and stored in an F32 twin model: equal to float rounding (measured
// ~1e-7 relative; bound 1e-5), and far from the base model.
TEST(model_lora_tiny, merge_equals_twin_with_updated_weights) {
  for (tensor_type type : {tensor_type::f32, tensor_type::q8_0}) {
    SCOPED_TRACE(std::string(triage::gguf::type_name(type)));
    temp_file base("base"), twin("twin"), lora("lora");
    write_tiny(base.str(), type);
    const adapter_spec s = all_targets_spec();
    write_adapter(lora.str(), s);
    const float scale = 0.75f;
    const tiny_values merged = merged_in_double(tiny_weights(type), {{s, scale}});
    write_tiny(twin.str(), type, &merged);
    const auto want = tiny_logits(twin.str());
    const auto got = tiny_logits(base.str(), {{lora.str(), scale}});
    const auto plain = tiny_logits(base.str());
    ASSERT_EQ(got.size(), want.size());
    std::printf("merged vs twin: max |diff| / max |logit| %.2e; base vs twin %.2e\n",
                max_rel_diff(got, want), max_rel_diff(plain, want));
    EXPECT_LT(max_rel_diff(got, want), 1e-5);
    EXPECT_GT(max_rel_diff(plain, want), 0.05);  // the adapter matters

    // Kept as F16: against a twin holding the F16-rounded double merge. The
    // float and double merges round to different F16 values where a weight
    // sits near a rounding boundary (one F16 step, 2^-11 relative): measured
    // 2e-4, bound 1e-3 (the base model is 0.1 away).
    tiny_values rounded = merged;
    for (auto& [name, v] : rounded) {
      for (float& x : v) x = triage::cpu::fp16_to_fp32(triage::cpu::fp32_to_fp16(x));
    }
    temp_file twin16("twin16");
    write_tiny(twin16.str(), type, &rounded);
    const auto got16 = tiny_logits(base.str(), {{lora.str(), scale}}, /*f16=*/true);
    const double d16 = max_rel_diff(got16, tiny_logits(twin16.str()));
    std::printf("merged as F16 vs its twin: %.2e\n", d16);
    EXPECT_LT(d16, 1e-3);
  }
}

TEST(model_lora_tiny, two_adapters_add_up) {
  temp_file base("base2"), twin("twin2"), l1("l1"), l2("l2");
  write_tiny(base.str(), tensor_type::f32);
  adapter_spec s1 = all_targets_spec();
  adapter_spec s2;
  s2.seed = 2;
  s2.has_alpha = false;
  s2.type = tensor_type::f16;  // F16 halves, as convert_lora_to_gguf.py writes by default
  s2.pairs = {{"blk.0.attn_q.weight", tiny_dim, tiny_dim, 2}, {"blk.1.ffn_down.weight", tiny_dim, tiny_ffn, 2}};
  write_adapter(l1.str(), s1);
  write_adapter(l2.str(), s2);
  const tiny_values merged =
      merged_in_double(tiny_weights(tensor_type::f32), {{s1, 0.5f}, {s2, -1.5f}});
  write_tiny(twin.str(), tensor_type::f32, &merged);
  const auto want = tiny_logits(twin.str());
  const auto got = tiny_logits(base.str(), {{l1.str(), 0.5f}, {l2.str(), -1.5f}});
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(max_rel_diff(got, want), 1e-5);
  const auto only1 = tiny_logits(base.str(), {{l1.str(), 0.5f}});
  EXPECT_GT(max_rel_diff(only1, want), 20 * max_rel_diff(got, want));
}

// llama.cpp's factor: scale * alpha / rank, or scale alone without alpha.
// Powers of two make the products exact, so the logits are bit-equal.
TEST(model_lora_tiny, alpha_rank_and_scale_combine_like_llama_cpp) {
  temp_file base("base3"), with_alpha("alpha"), no_alpha("noalpha"), zero_alpha("zeroalpha");
  write_tiny(base.str(), tensor_type::q8_0);
  adapter_spec s = all_targets_spec();  // rank 4
  s.alpha = 8.0f;                       // factor 2
  write_adapter(with_alpha.str(), s);
  s.has_alpha = false;
  write_adapter(no_alpha.str(), s);
  s.has_alpha = true;
  s.alpha = 0.0f;  // llama.cpp: 0 means "no alpha"
  write_adapter(zero_alpha.str(), s);
  const auto a = tiny_logits(base.str(), {{with_alpha.str(), 0.5f}});
  const auto b = tiny_logits(base.str(), {{no_alpha.str(), 1.0f}});
  const auto c = tiny_logits(base.str(), {{zero_alpha.str(), 1.0f}});
  const auto d = tiny_logits(base.str(), {{no_alpha.str(), 0.5f}});
  EXPECT_EQ(a, b);
  EXPECT_EQ(b, c);
  EXPECT_NE(a, d);
}

TEST(model_lora_tiny, scale_zero_is_the_base_model) {
  temp_file base("base4"), lora("lora4");
  write_tiny(base.str(), tensor_type::q8_0);
  write_adapter(lora.str(), all_targets_spec());
  EXPECT_EQ(tiny_logits(base.str(), {{lora.str(), 0.0f}}), tiny_logits(base.str()));
  EXPECT_NE(tiny_logits(base.str(), {{lora.str(), 0.01f}}), tiny_logits(base.str()));
}

TEST(model_lora_tiny, norm_tensors_in_the_adapter_are_ignored) {
  temp_file base("base5"), plain("plain5"), with_norm("norm5");
  write_tiny(base.str(), tensor_type::f32);
  adapter_spec s = all_targets_spec();
  write_adapter(plain.str(), s);
  s.extra_tensors = {"blk.0.attn_norm.weight"};
  write_adapter(with_norm.str(), s);
  EXPECT_EQ(tiny_logits(base.str(), {{with_norm.str(), 1.0f}}),
            tiny_logits(base.str(), {{plain.str(), 1.0f}}));
}

// --- errors: each names the key or tensor at fault ---

triage::error load_error(const adapter_spec& s, float scale = 1.0f) {
  temp_file base("ebase"), lora("elora");
  write_tiny(base.str(), tensor_type::q8_0);
  write_adapter(lora.str(), s);
  auto m = model::load(base.str(), {.threads = 1, .loras = {{lora.str(), scale}}});
  EXPECT_FALSE(m) << "loaded";
  if (m) return {};
  EXPECT_NE(m.error().message.find(lora.str()), std::string::npos) << m.error().message;
  return m.error();
}

adapter_spec one_pair() {
  adapter_spec s;
  s.pairs = {{"blk.1.attn_v.weight", tiny_dim / tiny_heads * tiny_kv_heads, tiny_dim}};
  return s;
}

#define EXPECT_ERROR(e, code_, text)                                          \
  do {                                                                         \
    const triage::error err_ = (e);                                            \
    EXPECT_EQ(err_.code, triage::model::make_error_code(code_)) << err_.what(); \
    EXPECT_NE(err_.message.find(text), std::string::npos) << err_.what();       \
  } while (0)

TEST(model_lora_errors, not_an_adapter) {
  adapter_spec s = one_pair();
  s.general_type = "model";
  EXPECT_ERROR(load_error(s), errc::bad_key, "'general.type' is 'model', expected 'adapter'");
  s.general_type = "";
  EXPECT_ERROR(load_error(s), errc::missing_key, "'general.type' is missing");
  s = one_pair();
  s.adapter_type = "control_vector";
  EXPECT_ERROR(load_error(s), errc::bad_key, "'adapter.type' is 'control_vector'");
}

TEST(model_lora_errors, another_architecture) {
  adapter_spec s = one_pair();
  s.arch = "qwen2";
  EXPECT_ERROR(load_error(s), errc::bad_key, "'general.architecture' is 'qwen2'");
}

TEST(model_lora_errors, alpha_of_the_wrong_type) {
  adapter_spec s = one_pair();
  s.alpha_as_u32 = true;
  EXPECT_ERROR(load_error(s), errc::bad_key, "'adapter.lora.alpha'");
}

TEST(model_lora_errors, shapes_that_do_not_match_the_base_tensor) {
  adapter_spec s = one_pair();
  s.pairs[0].a_extra_in = 1;
  EXPECT_ERROR(load_error(s), errc::bad_shape, "'blk.1.attn_v.weight.lora_a' has shape (65, 4)");
  s = one_pair();
  s.pairs[0].b_extra_out = 3;
  EXPECT_ERROR(load_error(s), errc::bad_shape, "'blk.1.attn_v.weight.lora_b' has shape (4, 35)");
  s = one_pair();
  s.pairs[0].b_rank = 5;
  EXPECT_ERROR(load_error(s), errc::bad_shape, "disagree on the rank");
}

TEST(model_lora_errors, target_missing_from_the_model) {
  adapter_spec s = one_pair();
  s.pairs.push_back({"blk.7.attn_q.weight", tiny_dim, tiny_dim});
  EXPECT_ERROR(load_error(s), errc::missing_tensor, "'blk.7.attn_q.weight' does not exist");
}

TEST(model_lora_errors, half_of_a_pair_missing) {
  adapter_spec s = one_pair();
  s.pairs[0].drop_b = true;
  EXPECT_ERROR(load_error(s), errc::missing_tensor, "'blk.1.attn_v.weight.lora_b' is missing");
  s = one_pair();
  s.pairs[0].drop_a = true;
  EXPECT_ERROR(load_error(s), errc::missing_tensor, "'blk.1.attn_v.weight.lora_a' is missing");
}

TEST(model_lora_errors, tensors_that_are_not_lora_pairs_or_targets) {
  adapter_spec s = one_pair();
  s.extra_tensors = {"blk.0.attn_q.bias"};
  EXPECT_ERROR(load_error(s), errc::bad_key, "'blk.0.attn_q.bias' is not a LoRA tensor");
  s = one_pair();
  s.pairs.push_back({"token_embd.weight", tiny_vocab, tiny_dim});
  EXPECT_ERROR(load_error(s), errc::unsupported_type, "'token_embd.weight' is not supported");
}

TEST(model_lora_errors, bad_scale_and_missing_file) {
  EXPECT_ERROR(load_error(one_pair(), std::nanf("")), errc::bad_key, "LoRA scale");
  temp_file base("ebase2");
  write_tiny(base.str(), tensor_type::f32);
  auto m = model::load(base.str(), {.loras = {{"/nonexistent/x.lora.gguf", 1.0f}}});
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("/nonexistent/x.lora.gguf"), std::string::npos)
      << m.error().what();
}

#else  // TRIAGE_LORA_SMOLLM2

// --- the real model against llama.cpp ---

constexpr int lora_rank = 8;
constexpr float lora_alpha = 16.0f, lora_gain_a = 0.25f, lora_gain_b = 0.125f;

// The adapter of make_lora.py, written with the project's GGUF writer.
void write_smollm2_adapter(const std::string& path, const triage::model::config& c) {
  triage::gguf::writer w;
  w.set("general.architecture", value::string(c.arch_name));
  w.set("general.type", value::string("adapter"));
  w.set("adapter.type", value::string("lora"));
  w.set("adapter.lora.alpha", value::f32(lora_alpha));
  uint64_t id = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const std::pair<std::string, std::pair<int, int>> targets[] = {
        {"attn_q", {c.q_dim(), c.dim}}, {"attn_v", {c.kv_dim(), c.dim}}, {"ffn_down", {c.dim, c.ffn_dim}}};
    for (const auto& [t, shape] : targets) {
      const auto [n_out, n_in] = shape;
      const auto a = hash_matrix(id++, lora_rank, n_in, lora_gain_a);
      w.add_tensor(p + t + ".weight.lora_a", tensor_type::f32, {uint64_t(n_in), lora_rank}, bytes_of(a));
      const auto b = hash_matrix(id++, n_out, lora_rank, lora_gain_b);
      w.add_tensor(p + t + ".weight.lora_b", tensor_type::f32, {lora_rank, uint64_t(n_out)}, bytes_of(b));
    }
  }
  auto ok = w.write_file(path);
  ASSERT_TRUE(ok) << ok.error().what();
}

struct golden_run {
  std::string prompt;
  float scale = 1.0f;
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> sampled;  // per token: logits at the sampled ids
  std::vector<std::vector<int32_t>> top_ids;
  std::vector<std::vector<float>> top_logits;
};

struct golden_set {
  int stride = 0, n_sample = 0;
  std::vector<golden_run> runs;
};

golden_set load_golden() {
  golden_set g;
  std::ifstream f(golden_dir() / "lora_logits.json");
  if (!f) return g;
  const auto j = nlohmann::json::parse(f);
  g.stride = j.at("sample_stride").get<int>();
  g.n_sample = j.at("n_sample").get<int>();
  EXPECT_EQ(j.at("lora").at("rank").get<int>(), lora_rank);
  EXPECT_EQ(j.at("lora").at("alpha").get<float>(), lora_alpha);
  EXPECT_EQ(j.at("lora").at("gain_a").get<float>(), lora_gain_a);
  EXPECT_EQ(j.at("lora").at("gain_b").get<float>(), lora_gain_b);
  std::ifstream bin(golden_dir() / j.at("logits_f16").get<std::string>(), std::ios::binary);
  for (const auto& r : j.at("runs")) {
    golden_run run;
    run.prompt = r.at("prompt").get<std::string>();
    run.scale = r.at("lora_scale").get<float>();
    run.tokens = r.at("tokens").get<std::vector<int32_t>>();
    bin.seekg(static_cast<std::streamoff>(r.at("row").get<int64_t>() * g.n_sample * 2));
    for (size_t t = 0; t < run.tokens.size(); ++t) {
      std::vector<uint16_t> h(static_cast<size_t>(g.n_sample));
      bin.read(reinterpret_cast<char*>(h.data()), static_cast<std::streamsize>(h.size() * 2));
      std::vector<float> row(h.size());
      for (size_t i = 0; i < h.size(); ++i) row[i] = triage::cpu::fp16_to_fp32(h[i]);
      run.sampled.push_back(std::move(row));
    }
    for (const auto& top : r.at("top")) {
      run.top_ids.push_back(top.at("ids").get<std::vector<int32_t>>());
      run.top_logits.push_back(top.at("logits").get<std::vector<float>>());
    }
    g.runs.push_back(std::move(run));
  }
  EXPECT_TRUE(bin.good()) << "lora_logits_f16.bin is shorter than lora_logits.json says";
  return g;
}

double cosine(std::span<const float> a, std::span<const float> b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

class model_lora_smollm2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(model_path())) return;
    auto base = model::load(model_path().string(), {.threads = 2});
    if (!base) {
      load_error = base.error().what();
      return;
    }
    adapter_path = new temp_file("smollm2");
    write_smollm2_adapter(adapter_path->str(), base.value().cfg());
    models[0.0f] = new model(std::move(base.value()));
    for (float s : {1.0f, 0.5f}) {
      auto m = model::load(model_path().string(), {.threads = 2, .loras = {{adapter_path->str(), s}}});
      if (!m) {
        load_error = m.error().what();
        return;
      }
      models[s] = new model(std::move(m.value()));
    }
    auto m16 = model::load(model_path().string(),
                           {.threads = 2, .loras = {{adapter_path->str(), 1.0f}}, .lora_f16 = true});
    if (!m16) {
      load_error = m16.error().what();
      return;
    }
    f16_model = new model(std::move(m16.value()));
    golden = load_golden();
  }
  static void TearDownTestSuite() {
    for (auto& [s, m] : models) delete m;
    models.clear();
    delete f16_model;
    f16_model = nullptr;
    delete adapter_path;
    adapter_path = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(model_path()))
        << model_path() << " not found: set TRIAGE_MODEL or install it (ops/setup.sh)";
    ASSERT_EQ(models.size(), 3u) << load_error;
    ASSERT_NE(f16_model, nullptr) << load_error;
    ASSERT_FALSE(golden.runs.empty()) << "golden files missing in " << golden_dir();
  }
  // Every token's logits of `tokens` (n_tokens, vocab).
  static std::vector<float> logits(float scale, const std::vector<int32_t>& tokens,
                                   bool f16 = false) {
    model* m = f16 ? f16_model : models.at(scale);
    return m->forward(std::vector<std::vector<int32_t>>{tokens}, {.all_logits = true}).all_logits;
  }
  static inline std::map<float, model*> models;  // base (0), adapter at 1 and 0.5
  static inline model* f16_model = nullptr;      // adapter at 1, merged as F16
  static inline temp_file* adapter_path = nullptr;
  static inline std::string load_error;
  static inline golden_set golden;
};

// The bound. Without an adapter this engine tracks llama.cpp to the last bit
// until attention rounding differs (model_llama_test: cosine >= 0.995 per
// prompt, max |diff| up to ~0.5). With the adapter merged, the 90 target
// matmuls read unquantized activations, where llama.cpp quantizes them to 8
// bits for the Q4_1 base and adds B (A x) in float. That alone moves the
// logits: the same engine with the adapter merged at scale 1e-30 (F32
// targets, no update) differs from the base model by up to 2.3 on these
// prompts. Measured against llama.cpp with the adapter (AVX-512 machine,
// 2 threads): per token over the 768 sampled ids plus llama.cpp's top 16,
// cosine >= 0.9933 and max |diff| <= 1.41 (chatml), mean cosine 0.9994.
// Bounds: cosine >= 0.99 per token, >= 0.998 on average, max |diff| < 2.
// The adapter itself moves the logits by up to 16 (llama.cpp: cosine with
// vs without down to 0.59, make_lora.py's printout), far outside them.
constexpr double min_cosine = 0.99, mean_cosine = 0.998, max_diff = 2.0;

TEST_F(model_lora_smollm2, logits_match_llama_cpp_with_the_adapter) {
  for (bool f16 : {false, true}) {
  SCOPED_TRACE(f16 ? "merged as F16" : "merged as F32");
  std::printf("merged as %s:\n", f16 ? "F16" : "F32");
  double cos_sum = 0;
  int n = 0;
  for (const auto& run : golden.runs) {
    if (f16 && run.scale != 1.0f) continue;
    const auto all = logits(run.scale, run.tokens, f16);
    const size_t vocab = all.size() / run.tokens.size();
    double worst_cos = 1, worst_diff = 0, worst_top = 0, moved = 0, moved_cos = 1;
    const auto base = logits(0.0f, run.tokens);
    for (size_t t = 0; t < run.tokens.size(); ++t) {
      const float* row = all.data() + t * vocab;
      const float* brow = base.data() + t * vocab;
      std::vector<float> ours(run.sampled[t].size()), plain(run.sampled[t].size());
      for (size_t i = 0; i < ours.size(); ++i) {
        ours[i] = row[i * size_t(golden.stride)];
        plain[i] = brow[i * size_t(golden.stride)];
      }
      double diff = 0;
      for (size_t i = 0; i < ours.size(); ++i) {
        diff = std::max(diff, std::fabs(double(ours[i]) - run.sampled[t][i]));
      }
      for (size_t i = 0; i < run.top_ids[t].size(); ++i) {
        const double d = std::fabs(double(row[run.top_ids[t][i]]) - run.top_logits[t][i]);
        diff = std::max(diff, d);
        worst_top = std::max(worst_top, d);
      }
      const double cos = cosine(ours, run.sampled[t]);
      moved_cos = std::min(moved_cos, cosine(ours, plain));
      for (size_t i = 0; i < vocab; ++i) moved = std::max(moved, std::fabs(double(row[i]) - brow[i]));
      worst_cos = std::min(worst_cos, cos);
      worst_diff = std::max(worst_diff, diff);
      cos_sum += cos;
      ++n;
      EXPECT_GE(cos, min_cosine) << run.prompt << " scale " << run.scale << " token " << t;
      EXPECT_LT(diff, max_diff) << run.prompt << " scale " << run.scale << " token " << t;
    }
    std::printf("%-8s scale %.1f %2zu tokens: vs llama.cpp min cosine %.5f, max|diff| %.3f "
                "(top-16 %.3f); the adapter moves our logits by up to %.2f (min cosine %.4f)\n",
                run.prompt.c_str(), run.scale, run.tokens.size(), worst_cos, worst_diff, worst_top,
                moved, moved_cos);
    // The adapter visibly changes the logits: far more than the bound.
    EXPECT_GT(moved, 2 * max_diff) << run.prompt;
    EXPECT_LT(moved_cos, 1 - 4 * (1 - min_cosine)) << run.prompt;
  }
  std::printf("mean cosine over %d tokens: %.5f\n", n, cos_sum / n);
  EXPECT_GE(cos_sum / n, mean_cosine);
  }
}

// Without the adapter, our logits are far from llama.cpp's adapted ones;
// the test above is not passing because the adapter does nothing.
TEST_F(model_lora_smollm2, base_model_is_outside_the_bound) {
  const auto& run = golden.runs.front();
  const auto base = logits(0.0f, run.tokens);
  const size_t vocab = base.size() / run.tokens.size();
  double worst = 0;
  for (size_t t = 0; t < run.tokens.size(); ++t) {
    for (size_t i = 0; i < run.sampled[t].size(); ++i) {
      worst = std::max(worst, std::fabs(double(base[t * vocab + i * size_t(golden.stride)]) -
                                        run.sampled[t][i]));
    }
  }
  EXPECT_GT(worst, 3 * max_diff);
}

TEST_F(model_lora_smollm2, scale_zero_equals_the_base_model) {
  auto m = model::load(model_path().string(), {.threads = 2, .loras = {{adapter_path->str(), 0.0f}}});
  ASSERT_TRUE(m) << m.error().what();
  const auto& tokens = golden.runs.front().tokens;
  EXPECT_EQ(m.value().forward(std::vector<std::vector<int32_t>>{tokens}, {.all_logits = true}).all_logits,
            logits(0.0f, tokens));
}

#endif  // TRIAGE_LORA_SMOLLM2

}  // namespace
