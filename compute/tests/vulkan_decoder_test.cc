// Step-wise decoding on Vulkan (vk_decoder: a KV cache on the device)
// against the CPU engine's model::decoder:
//  - a tiny random llama model (F32 weights, written here with
//    gguf::writer, so both engines multiply the same floats): feeding one
//    token at a time and feeding in chunks (split into micro-batches) give
//    the CPU decoder's logits at every step within a normalized error
//    max|vk - cpu| / max|cpu| < 5e-4 (both round K/V to F16; observed
//    5e-5), chunks equal feeding by one (observed 0); truncating and feeding again gives what a fresh decoder gives
//    (same floats, < 1e-6); and the decoder's errors (beyond capacity, bad
//    tokens, bad truncate);
//  - the real SmolLM2 file: a 16-token greedy continuation on Vulkan is the
//    CPU engine's (observed: all 16 tokens; a near tie of the CPU's best two,
//    < 0.5 logits, as vulkan_model_test counts it, would end the comparison
//    without failing; the smallest gap on this prompt is 0.11), and the constrained generator gives the
//    same category and urgency as on the CPU for two tickets (one under
//    ASan), with each category probability within 0.1 of the CPU's
//    (observed <= 0.071; the CPU rounds matmul inputs to 8 bits, the device
//    does not: logits cosine ~0.999).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <unistd.h>
#include <vector>

#include "compute/classifier/generate.h"
#include "compute/gguf/writer.h"
#include "compute/model/model.h"
#include "compute/tests/vulkan_test_util.h"
#include "compute/tokenizer/tokenizer.h"
#include "compute/vulkan/vk_decoder.h"
#include "compute/vulkan/vk_model.h"

namespace triage::vulkan {
namespace {

using gguf::tensor_type;
using gguf::value;

constexpr uint32_t k_vocab = 96;

// A tiny llama model with random F32 weights (2 blocks, GQA 4/2 heads of 16).
void write_tiny(const std::filesystem::path& path) {
  const uint32_t dim = 64, heads = 4, kv_heads = 2, ffn = 128, layers = 2, hd = dim / heads;
  std::mt19937 rng(7);
  gguf::writer w;
  w.set("general.architecture", value::string("llama"));
  w.set("llama.block_count", value::u32(layers));
  w.set("llama.embedding_length", value::u32(dim));
  w.set("llama.feed_forward_length", value::u32(ffn));
  w.set("llama.attention.head_count", value::u32(heads));
  w.set("llama.attention.head_count_kv", value::u32(kv_heads));
  w.set("llama.context_length", value::u32(256));
  w.set("llama.attention.layer_norm_rms_epsilon", value::f32(1e-5f));
  w.set("llama.rope.freq_base", value::f32(10000.0f));
  w.set("tokenizer.ggml.eos_token_id", value::u32(2));
  const auto add = [&](const std::string& name, std::vector<uint64_t> shape, float mean, float sd) {
    size_t n = 1;
    for (uint64_t d : shape) n *= d;
    std::normal_distribution<float> dist(mean, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    w.add_tensor(name, tensor_type::f32, shape, std::as_bytes(std::span<const float>(v)));
  };
  const auto matrix = [&](const std::string& name, uint32_t rows, uint32_t cols, float gain) {
    add(name, {cols, rows}, 0.0f, gain / std::sqrt(static_cast<float>(cols)));
  };
  matrix("token_embd.weight", k_vocab, dim, 16.0f);
  add("output_norm.weight", {dim}, 1.0f, 0.1f);
  for (uint32_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {dim}, 1.0f, 0.1f);
    matrix(p + "attn_q.weight", heads * hd, dim, 2.0f);
    matrix(p + "attn_k.weight", kv_heads * hd, dim, 2.0f);
    matrix(p + "attn_v.weight", kv_heads * hd, dim, 1.0f);
    matrix(p + "attn_output.weight", dim, heads * hd, 0.5f);
    add(p + "ffn_norm.weight", {dim}, 1.0f, 0.1f);
    matrix(p + "ffn_gate.weight", ffn, dim, 1.0f);
    matrix(p + "ffn_up.weight", ffn, dim, 1.0f);
    matrix(p + "ffn_down.weight", dim, ffn, 0.5f);
  }
  auto ok = w.write_file(path);
  ASSERT_TRUE(ok) << ok.error().what();
}

std::vector<float> copy_of(std::span<const float> s) { return {s.begin(), s.end()}; }

class vulkan_decoder : public test::vulkan_fixture {
 protected:
  void SetUp() override {
    test::vulkan_fixture::SetUp();
    path_ = std::filesystem::temp_directory_path() /
            ("triage_vkdec_tiny_" + std::to_string(::getpid()) + ".gguf");
    write_tiny(path_);
  }
  void TearDown() override {
    std::filesystem::remove(path_);
    test::vulkan_fixture::TearDown();
  }
  // Micro-batches of 8 tokens, so longer chunks take several submits.
  vk_model load_gpu() {
    auto m = vk_model::load(path_.string(), {.device = {.allow_cpu = true,
                                                        .validation = test::validate()},
                                             .max_batch_tokens = 8});
    EXPECT_TRUE(m) << m.error().what();
    return std::move(m).value();
  }
  std::filesystem::path path_;
};

TEST_F(vulkan_decoder, feeding_by_one_and_in_chunks_matches_the_cpu_decoder) {
  auto cpu = model::model::load(path_.string(), {.threads = 1});
  ASSERT_TRUE(cpu) << cpu.error().what();
  auto gpu = load_gpu();
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> pick(0, k_vocab - 1);
  std::vector<int32_t> ids(45);
  for (auto& t : ids) t = pick(rng);

  // One token at a time: every step's logits.
  model::decoder ref(cpu.value(), 64);
  auto d = vk_decoder::create(gpu, 64);
  ASSERT_TRUE(d) << d.error().what();
  double worst = 0.0;
  std::vector<std::vector<float>> by_one;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto want = copy_of(ref.feed(std::span(ids).subspan(i, 1)));
    const auto got = copy_of(d.value()->feed(std::span(ids).subspan(i, 1)));
    ASSERT_EQ(got.size(), static_cast<size_t>(k_vocab));
    worst = std::max(worst, test::normalized_error(got, want));
    by_one.push_back(got);
  }
  EXPECT_EQ(d.value()->size(), static_cast<int64_t>(ids.size()));
  std::printf("by one: worst normalized error vs CPU %.3g\n", worst);
  EXPECT_LT(worst, 5e-4);

  // In chunks (1, 7, 13 and 24 tokens; 13 and 24 span several micro-batches).
  model::decoder ref2(cpu.value(), 64);
  auto d2 = vk_decoder::create(gpu, 64);
  ASSERT_TRUE(d2) << d2.error().what();
  worst = 0.0;
  double vs_one = 0.0;
  size_t at = 0;
  for (size_t n : {1u, 7u, 13u, 24u}) {
    const auto part = std::span(ids).subspan(at, n);
    at += n;
    const auto want = copy_of(ref2.feed(part));
    const auto got = copy_of(d2.value()->feed(part));
    worst = std::max(worst, test::normalized_error(got, want));
    vs_one = std::max(vs_one, test::normalized_error(got, by_one[at - 1]));
  }
  std::printf("chunks: worst normalized error vs CPU %.3g, vs feeding by one %.3g\n", worst,
              vs_one);
  EXPECT_LT(worst, 5e-4);
  EXPECT_LT(vs_one, 1e-6);

  // A prefill with the same tokens ends with the same last-token logits.
  const std::vector<std::vector<int32_t>> seqs = {std::vector<int32_t>(ids.begin(), ids.begin() + 21)};
  auto f = gpu.forward(seqs, {.want_logits = true});
  ASSERT_TRUE(f) << f.error().what();
  EXPECT_LT(test::normalized_error(f.value().logits_of(0), by_one[20]), 1e-5);
}

TEST_F(vulkan_decoder, truncate_then_feed_again_equals_a_fresh_feed) {
  auto gpu = load_gpu();
  const std::vector<int32_t> prefix = {1, 5, 9, 33, 60, 2, 17, 88, 41, 3, 70, 12};
  const std::vector<int32_t> a = {7, 8, 9}, b = {50, 51, 52, 53, 54, 55, 56, 57, 58, 59};
  auto d = vk_decoder::create(gpu, 40);
  ASSERT_TRUE(d) << d.error().what();
  auto& dec = *d.value();
  dec.feed(prefix);
  const int64_t mark = dec.size();
  const auto after_a = copy_of(dec.feed(a));
  dec.truncate(mark);
  const auto after_b = copy_of(dec.feed(b));  // overwrites a's positions and more
  dec.truncate(mark);
  const auto again_a = copy_of(dec.feed(a));
  EXPECT_EQ(dec.size(), mark + 3);
  EXPECT_LT(test::normalized_error(again_a, after_a), 1e-6);
  EXPECT_EQ(dec.logits().size(), static_cast<size_t>(k_vocab));

  // A fresh decoder fed prefix + b at once.
  auto fresh = vk_decoder::create(gpu, 40);
  ASSERT_TRUE(fresh) << fresh.error().what();
  std::vector<int32_t> all = prefix;
  all.insert(all.end(), b.begin(), b.end());
  const auto want_b = copy_of(fresh.value()->feed(all));
  EXPECT_LT(test::normalized_error(after_b, want_b), 1e-6);
  // Back to zero and again: the same as the first time.
  dec.truncate(0);
  dec.feed(prefix);
  EXPECT_LT(test::normalized_error(copy_of(dec.feed(a)), after_a), 1e-6);
}

TEST_F(vulkan_decoder, refuses_tokens_beyond_capacity_and_outside_the_vocabulary) {
  auto gpu = load_gpu();
  auto d = vk_decoder::create(gpu, 10);
  ASSERT_TRUE(d) << d.error().what();
  auto& dec = *d.value();
  EXPECT_EQ(dec.capacity(), 10);
  const std::vector<int32_t> eight = {1, 2, 3, 4, 5, 6, 7, 8}, three = {9, 10, 11};
  const auto logits8 = copy_of(dec.feed(eight));
  EXPECT_THROW(dec.feed(three), std::length_error);
  EXPECT_EQ(dec.size(), 8);
  const std::vector<int32_t> bad = {static_cast<int32_t>(k_vocab)}, negative = {-1};
  try {
    dec.feed(bad);
    ADD_FAILURE() << "no exception for token " << k_vocab;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(k_vocab)), std::string::npos) << e.what();
  }
  EXPECT_THROW(dec.feed(negative), std::invalid_argument);
  EXPECT_THROW(dec.feed(std::span<const int32_t>()), std::invalid_argument);
  EXPECT_THROW(dec.truncate(9), std::invalid_argument);
  EXPECT_THROW(dec.truncate(-1), std::invalid_argument);
  EXPECT_EQ(dec.size(), 8);
  // The refused calls changed nothing: two more still fit and continue it.
  const std::vector<int32_t> two = {9, 10};
  dec.feed(two);
  EXPECT_EQ(dec.size(), 10);
  dec.truncate(7);
  const std::vector<int32_t> last = {8};
  EXPECT_LT(test::normalized_error(copy_of(dec.feed(last)), logits8), 1e-6);

  // The model-level calls say what is wrong too.
  auto c = gpu.make_cache(0);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, errc::invalid_argument);
  c = gpu.make_cache(257);  // context length 256
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("256"), std::string::npos) << c.error().message;
  auto cache = gpu.make_cache(4);
  ASSERT_TRUE(cache) << cache.error().what();
  std::vector<float> logits(k_vocab);
  auto r = gpu.extend(cache.value(), eight, logits);
  ASSERT_FALSE(r);
  EXPECT_EQ(cache.value().size(), 0);
  EXPECT_NE(r.error().message.find("do not fit"), std::string::npos) << r.error().message;
}

// A LoRA adapter for the tiny model (rank 2, alpha 4) on blk.0.attn_q and
// blk.1.ffn_down, in llama.cpp's layout (compute/model/README.md).
void write_tiny_lora(const std::filesystem::path& path) {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 0.3f);
  gguf::writer w;
  w.set("general.architecture", value::string("llama"));
  w.set("general.type", value::string("adapter"));
  w.set("adapter.type", value::string("lora"));
  w.set("adapter.lora.alpha", value::f32(4.0f));
  const auto pair = [&](const std::string& target, uint64_t n_in, uint64_t n_out) {
    std::vector<float> a(n_in * 2), b(2 * n_out);
    for (auto& x : a) x = dist(rng);
    for (auto& x : b) x = dist(rng);
    w.add_tensor(target + ".lora_a", tensor_type::f32, {n_in, 2},
                 std::as_bytes(std::span<const float>(a)));
    w.add_tensor(target + ".lora_b", tensor_type::f32, {2, n_out},
                 std::as_bytes(std::span<const float>(b)));
  };
  pair("blk.0.attn_q.weight", 64, 64);
  pair("blk.1.ffn_down.weight", 128, 64);
  auto ok = w.write_file(path);
  ASSERT_TRUE(ok) << ok.error().what();
}

// LoRA adapters merged at load (vk_model_options::loras) decode as the CPU
// engine with the same adapters does, and not as the base model.
TEST_F(vulkan_decoder, lora_adapters_merged_at_load_match_the_cpu_engine) {
  const auto lora = std::filesystem::path(path_.string() + ".lora.gguf");
  write_tiny_lora(lora);
  const std::vector<model::lora_spec> loras = {{.path = lora.string(), .scale = 0.5f}};
  auto cpu = model::model::load(path_.string(), {.threads = 1, .loras = loras});
  auto gpu = vk_model::load(path_.string(), {.device = {.allow_cpu = true,
                                                        .validation = test::validate()},
                                             .loras = loras});
  auto base = load_gpu();
  std::filesystem::remove(lora);
  ASSERT_TRUE(cpu) << cpu.error().what();
  ASSERT_TRUE(gpu) << gpu.error().what();
  const std::vector<int32_t> ids = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38};
  model::decoder ref(cpu.value(), 16);
  auto d = vk_decoder::create(gpu.value(), 16);
  auto b = vk_decoder::create(base, 16);
  ASSERT_TRUE(d && b);
  const auto want = copy_of(ref.feed(ids));
  const auto got = copy_of(d.value()->feed(ids));
  const auto plain = copy_of(b.value()->feed(ids));
  std::printf("LoRA: normalized error vs CPU %.3g, base vs LoRA %.3g\n",
              test::normalized_error(got, want), test::normalized_error(plain, want));
  EXPECT_LT(test::normalized_error(got, want), 5e-4);
  EXPECT_GT(test::normalized_error(plain, want), 1e-2);  // the adapter changed the model

  const std::vector<model::lora_spec> missing = {{.path = "/nonexistent/tiny.lora.gguf"}};
  auto bad = vk_model::load(path_.string(), {.device = {.allow_cpu = true}, .loras = missing});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("tiny.lora.gguf"), std::string::npos) << bad.error().message;
}

// --- the real model ---

// path, cpu and tok: the SmolLM2 file, on the CPU engine, and its tokenizer.
class vulkan_decoder_smollm2 : public test::smollm2_fixture {};

TEST_F(vulkan_decoder_smollm2, greedy_continuation_and_constrained_generation_match_the_cpu) {
  auto gpu = vk_model::load(path.string(), {.device = {.allow_cpu = true,
                                                       .validation = test::validate()}});
  ASSERT_TRUE(gpu) << gpu.error().what();

  // Greedy: 16 tokens after a short prompt, fed one at a time.
  const auto prompt = tok.value().encode("To reset your password,");
  model::decoder ref(cpu.value(), 64);
  auto d = vk_decoder::create(gpu.value(), 64);
  ASSERT_TRUE(d) << d.error().what();
  auto want = copy_of(ref.feed(prompt));
  auto got = copy_of(d.value()->feed(prompt));
  const auto argmax = [](const std::vector<float>& l) {
    return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
  };
  std::string text;
  for (int i = 0; i < 16; ++i) {
    const int32_t c = argmax(want), g = argmax(got);
    if (c != g) {
      // Only a near tie of the CPU's may part them; then the rest differs.
      EXPECT_LT(want[static_cast<size_t>(c)] - want[static_cast<size_t>(g)], 0.5f)
          << "token " << i << ": Vulkan " << g << ", CPU " << c;
      std::printf("near tie at token %d; compared %d tokens\n", i, i);
      break;
    }
    text += tok.value().piece(c);
    const int32_t next[1] = {c};
    want = copy_of(ref.feed(next));
    got = copy_of(d.value()->feed(next));
  }
  std::printf("greedy continuation: '%s'\n", text.c_str());

  // Constrained generation: a short prompt and four categories.
  classifier::generate_spec spec;
  spec.system_prompt =
      "Classify the bank customer's message. Answer with JSON. Categories: {categories}.";
  spec.max_tokens = 96;
  spec.max_expansions = 4;
  const std::vector<std::string> cats = {"cards", "transfers", "account_access", "fraud"};
  auto on_cpu = classifier::generator::create(cpu.value(), tok.value(), cats, spec);
  ASSERT_TRUE(on_cpu) << on_cpu.error().what();
  vk_model* dev = &gpu.value();
  auto on_gpu = classifier::generator::create(
      dev->cfg(), tok.value(), cats, spec,
      [dev](int64_t capacity) -> result<std::unique_ptr<model::step_decoder>> {
        auto dd = vk_decoder::create(*dev, capacity);
        if (!dd) return dd.error();
        return std::unique_ptr<model::step_decoder>(std::move(dd).value());
      });
  ASSERT_TRUE(on_gpu) << on_gpu.error().what();
#if defined(__SANITIZE_ADDRESS__)
  // Debug + sanitizers: the CPU engine is ~10x slower; one ticket.
  const std::vector<const char*> tickets = {"Transfer pending for three days"};
#else
  const std::vector<const char*> tickets = {"My card was stolen and someone paid with it",
                                            "Transfer pending for three days"};
#endif
  for (const char* ticket : tickets) {
    SCOPED_TRACE(ticket);
    const auto c = on_cpu.value().run(ticket);
    const auto g = on_gpu.value().run(ticket);
    std::printf("'%s': CPU %s, Vulkan %s\n", ticket, c.json.c_str(), g.json.c_str());
    EXPECT_EQ(g.json, c.json);
    EXPECT_EQ(g.category, c.category);
    EXPECT_EQ(g.urgency, c.urgency);
    ASSERT_EQ(g.category_probs.size(), c.category_probs.size());
    double diff = 0.0;
    for (size_t k = 0; k < c.category_probs.size(); ++k) {
      diff = std::max(diff, std::abs(static_cast<double>(g.category_probs[k]) - c.category_probs[k]));
    }
    std::printf("  largest category probability difference %.4f\n", diff);
    EXPECT_LT(diff, 0.1);
  }
}

}  // namespace
}  // namespace triage::vulkan
