// vulkan_test_util.h: what the Vulkan parity tests share: a context on the
// best device allowed (lavapipe where there is no GPU) with the validation
// layer on where it is installed, buffers from host vectors, the normalized
// error the tests bound, a fixture with shared ops (pipelines compiled once
// per program), the mul_mat parity cases with their CPU references, and the
// SmolLM2 file loaded on the CPU engine.
//
//   class my_ops : public triage::vulkan::test::ops_fixture {};
//   TEST_F(my_ops, add) {
//     buffer a = upload(random_floats(8, 1)), b = upload(random_floats(8, 2));
//     run([&](ops& k) { return k.add(a, b, a, 8); });
//   }
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "compute/cpu/matmul.h"
#include "compute/cpu/quantize.h"
#include "compute/cpu/thread_pool.h"
#include "compute/gguf/types.h"
#include "compute/model/model.h"
#include "compute/tests/test_files.h"
#include "compute/tokenizer/tokenizer.h"
#include "compute/vulkan/context.h"
#include "compute/vulkan/ops.h"

namespace triage::vulkan::test {

// max |a - b| / max |ref|: the error relative to the scale of the result, as
// ggml's backend tests measure it (element-wise relative error is
// meaningless near zero).
inline double normalized_error(std::span<const float> got, std::span<const float> ref) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    diff = std::max(diff, std::abs(static_cast<double>(got[i]) - ref[i]));
    scale = std::max(scale, std::abs(static_cast<double>(ref[i])));
  }
  return scale == 0.0 ? diff : diff / scale;
}

// Whether tests turn on the validation layer: where it is installed, unless
// TRIAGE_VULKAN_VALIDATION=0, and not under AddressSanitizer: with the layer
// on, lavapipe leaks 192 bytes per process (freed by neither the layer nor
// the driver at vkDestroyDevice), which LeakSanitizer would report. The
// release test pass runs the layer; the sanitizer pass checks our memory.
inline bool validate() {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#else
  const char* env = std::getenv("TRIAGE_VULKAN_VALIDATION");
  if (env != nullptr && std::string(env) == "0") return false;
  return validation_layer_available();
#endif
}

// One context for the whole test program, on the best device allowed, with
// the validation layer on where it is installed. Shared so that each shader
// variant compiles once per program (lavapipe compiles pipelines with LLVM,
// ~0.1-1 s each); destroyed at exit, before LeakSanitizer looks, so that
// everything lavapipe allocated for it is freed. A second, unused context
// lives on (never destroyed) only to keep the driver loaded: unloading it
// would make LeakSanitizer report lavapipe's own globals (see
// vulkan_add_test.cc). Null when no device could be opened.
inline context* shared_context(std::string* why = nullptr) {
  static context* const keep_driver_loaded = [] {
    // With the same layers, so the validation layer stays loaded too.
    auto c = context::create({.allow_cpu = true, .validation = validate()});
    return c ? new context(std::move(c).value()) : nullptr;
  }();
  (void)keep_driver_loaded;
  static std::string error;
  static const std::unique_ptr<context> ctx = [] {
    auto c = context::create({.allow_cpu = true, .validation = validate()});
    if (!c) {
      error = c.error().what();
      return std::unique_ptr<context>();
    }
    return std::make_unique<context>(std::move(c).value());
  }();
  if (why) *why = error;
  return ctx.get();
}

// Gives tests the shared context and fails a test on any validation message
// that appeared while it ran.
class vulkan_fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    context* ctx = shared_context(&why);
    ASSERT_NE(ctx, nullptr) << why;
    ctx_ = ctx;
    seen_ = ctx->validation_messages().size();
  }
  void TearDown() override {
    if (!ctx_) return;
    const auto messages = ctx_->validation_messages();
    for (size_t i = seen_; i < messages.size(); ++i) ADD_FAILURE() << "validation: " << messages[i];
  }

  // A buffer holding `values` (at least 4 bytes).
  template <class T>
  buffer upload(const std::vector<T>& values) {
    auto b = ctx_->create_buffer(std::max<size_t>(4, values.size() * sizeof(T)));
    EXPECT_TRUE(b) << b.error().what();
    if (!b) return {};
    if (!values.empty()) {
      std::memcpy(b.value().bytes().data(), values.data(), values.size() * sizeof(T));
    }
    return std::move(b).value();
  }
  buffer zeros(size_t floats) { return upload(std::vector<float>(floats, 0.0f)); }
  static std::vector<float> read(buffer& b, size_t floats) {
    auto all = b.as<float>();
    return {all.begin(), all.begin() + static_cast<std::ptrdiff_t>(floats)};
  }

  context* ctx_ = nullptr;
  size_t seen_ = 0;
};

// vulkan_fixture with one ops on the shared context for the whole program
// (pipelines compile once), and run() to record and submit ops.
class ops_fixture : public vulkan_fixture {
 protected:
  void SetUp() override {
    vulkan_fixture::SetUp();
    if (ctx_) ops_ = &shared_ops(*ctx_);
  }
  // begin(), the recording `f` makes, submit().
  template <class F>
  void run(F&& f) {
    ASSERT_TRUE(ctx_->begin());
    auto r = f(*ops_);
    ASSERT_TRUE(r) << r.error().what();
    auto s = ctx_->submit();
    ASSERT_TRUE(s) << s.error().what();
  }
  // Made after the shared context, so destroyed before it.
  static ops& shared_ops(context& ctx) {
    static const std::unique_ptr<ops> k = std::make_unique<ops>(ctx);
    return *k;
  }

  ops* ops_ = nullptr;
};

// n floats uniform in [lo, hi), the same for the same seed.
inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(n);
  for (float& x : out) x = dist(rng);
  return out;
}

// The type's name in lower case ("q4_1"), as the shader names spell it.
inline std::string lower_type(gguf::tensor_type t) {
  std::string s(gguf::type_name(t));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// --- mul_mat parity cases ---

// y (m x rows) = x (m x cols) W^T for W (rows x cols) in `type`.
struct matmul_case {
  gguf::tensor_type type;
  int rows, cols, m;
};

// The test name of a case: "q4_1_67x96_m5".
inline std::string case_name(const ::testing::TestParamInfo<matmul_case>& info) {
  return lower_type(info.param.type) + "_" + std::to_string(info.param.rows) + "x" +
         std::to_string(info.param.cols) + "_m" + std::to_string(info.param.m);
}

// `shapes` ({rows, cols, m}) for each type with blocks of 32 (F32, F16,
// BF16, Q8_0, Q4_0, Q4_1), then 3 x 256 (m 1) and 70 x 512 (m 9) for Q4_K
// and Q6_K (super-blocks of 256).
inline std::vector<matmul_case> matmul_cases(std::initializer_list<std::array<int, 3>> shapes) {
  using gguf::tensor_type;
  std::vector<matmul_case> out;
  for (tensor_type t : {tensor_type::f32, tensor_type::f16, tensor_type::bf16, tensor_type::q8_0,
                        tensor_type::q4_0, tensor_type::q4_1}) {
    for (const auto& [rows, cols, m] : shapes) out.push_back({t, rows, cols, m});
  }
  for (tensor_type t : {tensor_type::q4_k, tensor_type::q6_k}) {
    out.push_back({t, 3, 256, 1});
    out.push_back({t, 70, 512, 9});
  }
  return out;
}

// The cases whose weight type takes int8 activations (cpu::uses_q8).
inline std::vector<matmul_case> quantized_cases(const std::vector<matmul_case>& all) {
  std::vector<matmul_case> out;
  for (const matmul_case& c : all) {
    if (cpu::uses_q8(c.type)) out.push_back(c);
  }
  return out;
}

// A case's data: random weights (seed rows * 31 + cols) quantized to its
// type, random activations in [-2, 2) (seed m + 7), and the CPU's results.
// Not copyable: `view` points into `bytes`.
struct matmul_problem {
  explicit matmul_problem(const matmul_case& c)
      : bytes(cpu::quantize_weights(
            c.type, random_floats(static_cast<size_t>(c.rows) * c.cols, c.rows * 31 + c.cols),
            c.rows, c.cols)),
        row_bytes(*gguf::row_bytes(c.type, c.cols)),
        view{c.type, c.rows, c.cols, row_bytes, bytes.data()},
        x(random_floats(static_cast<size_t>(c.m) * c.cols, c.m + 7, -2.0f, 2.0f)),
        m(c.m) {}
  matmul_problem(const matmul_problem&) = delete;
  matmul_problem& operator=(const matmul_problem&) = delete;

  // x W^T by cpu::matmul_reference (float activations).
  std::vector<float> reference() const {
    std::vector<float> y(static_cast<size_t>(m) * view.rows);
    cpu::matmul_reference(view, x.data(), m, y.data());
    return y;
  }
  // x W^T by the CPU engine's integer kernels, x rounded to int8 per block of
  // 32 as the shaders round it for every type (the CPU engine would use Q8_K
  // for Q6_K by default, cpu/quantize.h, so the format is given explicitly).
  std::vector<float> q8_reference() const {
    std::vector<float> y(static_cast<size_t>(m) * view.rows);
    cpu::thread_pool pool(1);
    cpu::q8_activations xq;
    cpu::quantize_activations(x.data(), m, view.cols, xq, &pool, 0, cpu::q8_format::q8_0);
    cpu::matmul(view, {x.data(), &xq, m, 0}, y.data(), pool);
    return y;
  }
  // The normalized error bound against q8_reference(): 1e-4 for the order
  // of the additions and codes rounded the other way, 1e-3 for Q4_0, Q4_1
  // and Q4_K, whose block offset terms the CPU keeps in F16 (2^-11 relative).
  double q8_bound() const {
    const bool f16_offsets = view.type == gguf::tensor_type::q4_0 ||
                             view.type == gguf::tensor_type::q4_1 ||
                             view.type == gguf::tensor_type::q4_k;
    return f16_offsets ? 1e-3 : 1e-4;
  }

  std::vector<std::byte> bytes;
  uint64_t row_bytes;
  cpu::matrix_view view;
  std::vector<float> x;
  int m;
};

// --- the real model ---

// vulkan_fixture that also loads the SmolLM2 file (test_files::model_path(),
// installed by ops/setup.sh) on the CPU engine, with its tokenizer: the test
// fails in SetUp when the file is missing or does not load.
class smollm2_fixture : public vulkan_fixture {
 protected:
  void SetUp() override {
    vulkan_fixture::SetUp();
    if (HasFatalFailure()) return;
    path = test_files::model_path();
    ASSERT_TRUE(std::filesystem::exists(path)) << path << " (ops/setup.sh installs it)";
    auto m = model::model::load(path.string(), {.threads = 2});
    ASSERT_TRUE(m) << m.error().what();
    cpu.emplace(std::move(m).value());
    auto t = tokenizer::tokenizer::from_gguf(cpu->gguf());
    ASSERT_TRUE(t) << t.error().what();
    tok.emplace(std::move(t).value());
  }

  std::filesystem::path path;                   // the model file
  std::optional<model::model> cpu;              // on the CPU engine, 2 threads
  std::optional<tokenizer::tokenizer> tok;      // its tokenizer
};

}  // namespace triage::vulkan::test
