// Tiny random llama models written with gguf::writer: every weight type the
// engine reads (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) runs through the
// whole forward pass without big files, against a twin model holding the
// same weights dequantized to F32; KV-cache decoding against recomputing from
// scratch; and broken files, whose errors must name the key or tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "compute/cpu/dequantize.h"
#include "compute/cpu/quantize.h"
#include "compute/gguf/writer.h"
#include "compute/model/errc.h"
#include "compute/model/model.h"

namespace {

using triage::gguf::tensor_type;
using triage::gguf::value;
using triage::model::errc;
using triage::model::model;
using triage::model::pooling;

struct tiny_spec {
  uint32_t dim = 256;  // K-quant rows need multiples of 256
  uint32_t n_heads = 4;
  uint32_t n_kv_heads = 2;
  uint32_t ffn = 512;
  uint32_t vocab = 300;
  uint32_t layers = 2;
  std::vector<std::pair<std::string, value>> extra_keys{};  // e.g. llama.rope.scaling.*
  std::vector<float> rope_freqs{};  // written as rope_freqs.weight when not empty
};

// What to break in a file (for the error tests).
struct damage {
  std::string drop_tensor{};
  std::string drop_key{};
  std::string reshape_tensor{};  // written with one row too many
  tensor_type norm_type = tensor_type::f32;
};

class tiny_file {
 public:
  explicit tiny_file(const std::string& tag)
      : path_(std::filesystem::temp_directory_path() /
              ("triage_tiny_" + tag + "_" + std::to_string(::getpid()) + ".gguf")) {}
  ~tiny_file() { std::filesystem::remove(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Random weights, scaled so activations stay O(1) through the blocks.
std::vector<float> random_matrix(uint32_t rows, uint32_t cols, std::mt19937& rng, float gain = 1.0f) {
  std::normal_distribution<float> dist(0.0f, gain / std::sqrt(static_cast<float>(cols)));
  std::vector<float> w(static_cast<size_t>(rows) * cols);
  for (auto& v : w) v = dist(rng);
  return w;
}

// Writes a tiny llama model with matrices stored as `type`; when `twin`, the
// same matrices are stored as F32 after a round trip through `type`, so both
// files hold exactly the same weight values.
void write_tiny(const std::filesystem::path& path, tensor_type type, bool twin, uint32_t seed,
                const tiny_spec& s = {}, const damage& dmg = {}) {
  std::mt19937 rng(seed);
  triage::gguf::writer w;
  const auto set = [&](const std::string& key, value v) {
    if (key != dmg.drop_key) w.set(key, std::move(v));
  };
  set("general.architecture", value::string("llama"));
  set("llama.block_count", value::u32(s.layers));
  set("llama.embedding_length", value::u32(s.dim));
  set("llama.feed_forward_length", value::u32(s.ffn));
  set("llama.attention.head_count", value::u32(s.n_heads));
  set("llama.attention.head_count_kv", value::u32(s.n_kv_heads));
  set("llama.context_length", value::u32(512));
  set("llama.attention.layer_norm_rms_epsilon", value::f32(1e-5f));
  set("llama.rope.freq_base", value::f32(10000.0f));
  set("tokenizer.ggml.eos_token_id", value::u32(2));
  for (const auto& [key, v] : s.extra_keys) set(key, v);
  if (!s.rope_freqs.empty()) {
    w.add_tensor("rope_freqs.weight", tensor_type::f32, {static_cast<uint32_t>(s.rope_freqs.size())},
                 std::as_bytes(std::span<const float>(s.rope_freqs)));
  }

  const auto add_matrix = [&](const std::string& name, uint32_t rows, uint32_t cols, float gain) {
    const auto wf = random_matrix(rows, cols, rng, gain);
    if (name == dmg.drop_tensor) return;
    const uint32_t out_rows = name == dmg.reshape_tensor ? rows + 1 : rows;
    std::vector<float> values = wf;
    values.resize(static_cast<size_t>(out_rows) * cols, 0.0f);
    auto bytes = triage::cpu::quantize_weights(type, values, out_rows, cols);
    if (twin) {
      std::vector<float> back(values.size());
      const size_t rb = bytes.size() / out_rows;
      for (uint32_t r = 0; r < out_rows; ++r) {
        triage::cpu::dequantize_row(type, bytes.data() + r * rb, back.data() + static_cast<size_t>(r) * cols, cols);
      }
      w.add_tensor(name, tensor_type::f32, {cols, out_rows},
                   std::as_bytes(std::span<const float>(back)));
    } else {
      w.add_tensor(name, type, {cols, out_rows}, bytes);
    }
  };
  const auto add_norm = [&](const std::string& name, uint32_t n) {
    std::normal_distribution<float> dist(1.0f, 0.1f);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    if (name == dmg.drop_tensor) return;
    const auto bytes = triage::cpu::quantize_weights(dmg.norm_type, v, 1, n);
    w.add_tensor(name, dmg.norm_type, {n}, bytes);
  };
  const uint32_t hd = s.dim / s.n_heads;
  add_matrix("token_embd.weight", s.vocab, s.dim, 16.0f);  // embeddings of size ~1
  add_norm("output_norm.weight", s.dim);
  for (uint32_t l = 0; l < s.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add_norm(p + "attn_norm.weight", s.dim);
    add_matrix(p + "attn_q.weight", s.n_heads * hd, s.dim, 2.0f);
    add_matrix(p + "attn_k.weight", s.n_kv_heads * hd, s.dim, 2.0f);
    add_matrix(p + "attn_v.weight", s.n_kv_heads * hd, s.dim, 1.0f);
    add_matrix(p + "attn_output.weight", s.dim, s.n_heads * hd, 0.5f);
    add_norm(p + "ffn_norm.weight", s.dim);
    add_matrix(p + "ffn_gate.weight", s.ffn, s.dim, 1.0f);
    add_matrix(p + "ffn_up.weight", s.ffn, s.dim, 1.0f);
    add_matrix(p + "ffn_down.weight", s.dim, s.ffn, 0.5f);
  }
  auto ok = w.write_file(path);
  ASSERT_TRUE(ok) << ok.error().what();
}

double norm_err(std::span<const float> y, std::span<const float> ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    num += (static_cast<double>(y[i]) - ref[i]) * (static_cast<double>(y[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

const std::vector<std::vector<int32_t>> tiny_seqs{
    {5, 17, 42, 7, 99, 250, 3}, {1}, {299, 0, 12, 12, 12, 8, 64, 128, 200, 150, 11, 2, 9}};

// Quantized weights vs the same values in F32: the quantized run also
// quantizes its activations to 8 bits per 32 values, which costs ~0.5% per
// matmul; after 2 blocks the pooled states and logits stay within 2% (they
// measure 0.7-0.9%)
// (normalized error ||y - y_f32|| / ||y_f32||). Float types run the float
// kernels on the same values: identical up to summation order (1e-5).
double type_bound(tensor_type t) {
  switch (t) {
    case tensor_type::f32:
    case tensor_type::f16:
    case tensor_type::bf16:
      return 1e-5;
    default:
      return 2e-2;
  }
}

TEST(model_tiny, every_weight_type_matches_its_f32_twin) {
  for (tensor_type t : {tensor_type::f32, tensor_type::f16, tensor_type::bf16, tensor_type::q8_0,
                        tensor_type::q4_0, tensor_type::q4_1, tensor_type::q4_k,
                        tensor_type::q6_k}) {
    const std::string name(triage::gguf::type_name(t));
    tiny_file quant(name), f32(name + "_f32");
    write_tiny(quant.path(), t, false, 1234);
    write_tiny(f32.path(), t, true, 1234);
    auto mq = model::load(quant.path().string(), {.threads = 2});
    auto mf = model::load(f32.path().string(), {.threads = 2});
    ASSERT_TRUE(mq) << name << ": " << mq.error().what();
    ASSERT_TRUE(mf) << name << ": " << mf.error().what();
    const triage::model::forward_options opts{.pool = pooling::both, .want_logits = true};
    const auto a = mq.value().forward(tiny_seqs, opts);
    const auto b = mf.value().forward(tiny_seqs, opts);
    const double e_last = norm_err(a.last, b.last), e_mean = norm_err(a.mean, b.mean);
    const double e_logits = norm_err(a.logits, b.logits);
    std::printf("%-5s vs F32 twin: last %.2e  mean %.2e  logits %.2e  (bound %.0e)\n",
                name.c_str(), e_last, e_mean, e_logits, type_bound(t));
    EXPECT_LT(e_last, type_bound(t)) << name;
    EXPECT_LT(e_mean, type_bound(t)) << name;
    EXPECT_LT(e_logits, type_bound(t)) << name;
    // And the quantization does matter: a quantized model is not its own twin
    // by accident (the twin holds the round-tripped values, not the originals).
    if (t != tensor_type::f32) {
      tiny_file orig(name + "_orig");
      write_tiny(orig.path(), tensor_type::f32, false, 1234);
      auto mo = model::load(orig.path().string(), {.threads = 2});
      ASSERT_TRUE(mo);
      EXPECT_GT(norm_err(mo.value().forward(tiny_seqs, opts).last, b.last), 0.0) << name;
    }
  }
}

// Decoding with the KV cache gives the same tokens as recomputing the whole
// sequence at every step.
TEST(model_tiny, kv_cache_decoding_equals_recomputation) {
  for (tensor_type t : {tensor_type::q4_1, tensor_type::f32}) {
    tiny_file f(std::string("kv_") + std::string(triage::gguf::type_name(t)));
    write_tiny(f.path(), t, false, 99);
    auto m = model::load(f.path().string(), {.threads = 2});
    ASSERT_TRUE(m) << m.error().what();
    const std::vector<int32_t> prompt{3, 14, 15, 92, 65};
    const auto gen = m.value().generate_greedy(prompt, 12);
    ASSERT_EQ(gen.size(), 12u);
    std::vector<int32_t> seq = prompt;
    for (int32_t tok : gen) {
      const auto out = m.value().forward(std::vector<std::vector<int32_t>>{seq}, {.want_logits = true});
      const auto l = out.logits_of(0);
      EXPECT_EQ(std::max_element(l.begin(), l.end()) - l.begin(), tok);
      seq.push_back(tok);
    }
  }
}

TEST(model_tiny, ragged_batch_equals_sequences_alone) {
  tiny_file f("ragged");
  write_tiny(f.path(), tensor_type::q4_k, false, 7);
  auto m = model::load(f.path().string(), {.threads = 3});
  ASSERT_TRUE(m);
  const auto all = m.value().forward(tiny_seqs, {.pool = pooling::both, .want_logits = true});
  for (size_t s = 0; s < tiny_seqs.size(); ++s) {
    const auto one = m.value().forward(std::vector<std::vector<int32_t>>{tiny_seqs[s]},
                                       {.pool = pooling::both, .want_logits = true});
    for (int d = 0; d < all.dim; ++d) {
      ASSERT_EQ(all.last_of(static_cast<int64_t>(s))[static_cast<size_t>(d)], one.last[static_cast<size_t>(d)]);
      ASSERT_EQ(all.mean_of(static_cast<int64_t>(s))[static_cast<size_t>(d)], one.mean[static_cast<size_t>(d)]);
    }
  }
}

TEST(model_tiny, norms_stored_as_f16_are_converted) {
  tiny_file f("f16norm");
  write_tiny(f.path(), tensor_type::q8_0, false, 5, {}, {.norm_type = tensor_type::f16});
  auto m = model::load(f.path().string(), {.threads = 1});
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m.value().forward(tiny_seqs).last.size(), tiny_seqs.size() * 256);
}

// --- broken files ---

triage::error load_error(const damage& dmg, const tiny_spec& spec = {},
                         tensor_type type = tensor_type::q4_0) {
  tiny_file f("bad");
  write_tiny(f.path(), type, false, 3, spec, dmg);
  auto m = model::load(f.path().string());
  EXPECT_FALSE(m);
  return m ? triage::error{} : m.error();
}

TEST(model_tiny, missing_tensor_is_named) {
  const auto e = load_error({.drop_tensor = "blk.1.ffn_up.weight"});
  EXPECT_EQ(e.code, errc::missing_tensor);
  EXPECT_NE(e.message.find("'blk.1.ffn_up.weight' is missing"), std::string::npos) << e.message;
}

TEST(model_tiny, wrong_shape_is_named) {
  const auto e = load_error({.reshape_tensor = "blk.0.attn_k.weight"});
  EXPECT_EQ(e.code, errc::bad_shape);
  EXPECT_NE(e.message.find("'blk.0.attn_k.weight' has shape (256, 129), expected (256, 128)"),
            std::string::npos)
      << e.message;
}

TEST(model_tiny, missing_key_is_named) {
  for (const std::string key : {"llama.attention.head_count", "llama.block_count",
                                "llama.attention.layer_norm_rms_epsilon"}) {
    const auto e = load_error({.drop_key = key});
    EXPECT_EQ(e.code, errc::missing_key) << key;
    EXPECT_NE(e.message.find("'" + key + "' is missing"), std::string::npos) << e.message;
  }
  // Optional keys fall back to their defaults.
  tiny_file f("optional");
  write_tiny(f.path(), tensor_type::q4_0, false, 3, {}, {.drop_key = "llama.rope.freq_base"});
  auto m = model::load(f.path().string());
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m.value().cfg().rope_freq_base, 10000.0f);
  EXPECT_EQ(m.value().cfg().n_kv_heads, 2);
}

// RoPE scaling as llama.cpp applies it: angle = freq_scale * (theta / ff).
// Linear factor 4 and rope_freqs of 4 for every pair both quarter every
// angle exactly (a power of two), so they give the same bits; factors of 1
// change nothing; and scaling does change the output (2+ tokens).
TEST(model_tiny, rope_scaling_linear_and_frequency_factors) {
  const uint32_t half = 256 / 4 / 2;  // head_dim / 2 pairs
  const auto logits_of = [&](const tiny_spec& spec, const std::string& tag) {
    tiny_file f(tag);
    write_tiny(f.path(), tensor_type::q8_0, false, 77, spec);
    auto m = model::load(f.path().string(), {.threads = 2});
    EXPECT_TRUE(m) << tag << ": " << m.error().what();
    if (!m) return std::pair{std::vector<float>{}, 0.0f};
    const float scale = m.value().cfg().rope_freq_scale;
    return std::pair{m.value().forward(tiny_seqs, {.want_logits = true}).logits, scale};
  };
  const auto [plain, s_plain] = logits_of({}, "rope_plain");
  const auto [linear, s_linear] =
      logits_of({.extra_keys = {{"llama.rope.scaling.type", value::string("linear")},
                                {"llama.rope.scaling.factor", value::f32(4.0f)}}},
                "rope_linear");
  // llama.cpp's default type is linear, and rope.scale_linear is the older key.
  const auto [old_key, s_old_key] =
      logits_of({.extra_keys = {{"llama.rope.scale_linear", value::f32(4.0f)}}}, "rope_old");
  const auto [fours, s_fours] = logits_of({.rope_freqs = std::vector<float>(half, 4.0f)}, "rope_ff4");
  const auto [ones, s_ones] = logits_of({.rope_freqs = std::vector<float>(half, 1.0f)}, "rope_ff1");
  const auto [none, s_none] =
      logits_of({.extra_keys = {{"llama.rope.scaling.type", value::string("none")},
                                {"llama.rope.scaling.factor", value::f32(4.0f)}}},
                "rope_none");
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(s_plain, 1.0f);
  EXPECT_EQ(s_linear, 0.25f);
  EXPECT_EQ(s_old_key, 0.25f);
  EXPECT_EQ(s_none, 1.0f);
  EXPECT_EQ(linear, fours);
  EXPECT_EQ(old_key, linear);
  EXPECT_EQ(ones, plain);
  EXPECT_EQ(none, plain);
  EXPECT_GT(norm_err(linear, plain), 1e-4);
}

TEST(model_tiny, unsupported_rope_scaling_is_named) {
  const auto yarn = load_error(
      {}, {.extra_keys = {{"llama.rope.scaling.type", value::string("yarn")},
                          {"llama.rope.scaling.factor", value::f32(4.0f)}}});
  EXPECT_EQ(yarn.code, errc::bad_key);
  EXPECT_NE(yarn.message.find("'llama.rope.scaling.type' is 'yarn'"), std::string::npos)
      << yarn.message;
  const auto attn = load_error({}, {.extra_keys = {{"llama.rope.scaling.attn_factor",
                                                    value::f32(1.5f)}}});
  EXPECT_EQ(attn.code, errc::bad_key);
  EXPECT_NE(attn.message.find("'llama.rope.scaling.attn_factor'"), std::string::npos)
      << attn.message;
  const auto freqs = load_error({}, {.rope_freqs = std::vector<float>(7, 1.0f)});
  EXPECT_EQ(freqs.code, errc::bad_shape);
  EXPECT_NE(freqs.message.find("'rope_freqs.weight'"), std::string::npos) << freqs.message;
}

TEST(model_tiny, inconsistent_hyperparameters_and_architecture) {
  const auto e = load_error({}, {.n_heads = 3}, tensor_type::f32);  // 256 = 3 * 85 + 1
  EXPECT_EQ(e.code, errc::bad_key);
  EXPECT_NE(e.message.find("llama.attention.head_count"), std::string::npos) << e.message;

  triage::gguf::writer w;
  w.set("general.architecture", value::string("mamba"));
  tiny_file f("arch");
  ASSERT_TRUE(w.write_file(f.path()));
  auto m = model::load(f.path().string());
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::unsupported_architecture);
  EXPECT_NE(m.error().message.find("'mamba'"), std::string::npos);

  auto missing = model::load("/nonexistent/model.gguf");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, triage::gguf::errc::not_found);
}

}  // namespace
