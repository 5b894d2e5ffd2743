// vulkan_test_util.h: what the Vulkan parity tests share: a context on the
// best device allowed (lavapipe where there is no GPU) with the validation
// layer on where it is installed, buffers from host vectors, and the
// normalized error the tests bound.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compute/vulkan/context.h"

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

}  // namespace triage::vulkan::test
