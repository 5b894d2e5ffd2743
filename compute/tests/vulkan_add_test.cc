// The shader build path and the Vulkan runtime end to end: add.comp, compiled
// and embedded at build time, runs on the best device allowed (lavapipe where
// there is no GPU) and matches a CPU reference exactly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "compute/shaders/spirv.h"
#include "compute/vulkan/context.h"
#include "compute/vulkan/errc.h"

namespace triage::vulkan {

// lavapipe keeps some allocations reachable only from its own globals. When
// the loader unloads it (vkDestroyInstance of the last instance),
// LeakSanitizer reports them as leaks from "<unknown module>", which no
// suppression can match. A context held for the whole process keeps the
// driver loaded, so leaks of our own objects are still reported, with stacks.
// External linkage, so that the compiler keeps the pointer LeakSanitizer
// scans; intentionally never destroyed.
extern context* const keep_driver_loaded;
context* const keep_driver_loaded = [] {
  auto ctx = context::create({.allow_cpu = true});
  return ctx ? new context(std::move(ctx).value()) : nullptr;
}();

namespace {

using ::testing::HasSubstr;

constexpr uint32_t workgroup_size = 64;

// Sets an environment variable for one scope, then puts back what was there.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    if (old) old_ = old;
    setenv(name, value, 1);
  }
  ~scoped_env() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(shaders, registry_finds_embedded_spirv) {
  EXPECT_EQ(shaders::find("no_such_shader"), nullptr);
  const shaders::spirv* add = shaders::find("add_f32");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->name, "add_f32");
  ASSERT_GT(add->word_count, 5u);
  EXPECT_EQ(add->words[0], 0x07230203u);  // SPIR-V magic, host byte order
  EXPECT_NE(shaders::find("add_u32"), nullptr);
  EXPECT_GE(shaders::all().size(), 2u);
}

TEST(vulkan, lists_devices) {
  auto devices = list_devices();
  ASSERT_TRUE(devices) << devices.error().what();
  ASSERT_FALSE(devices.value().empty());
  for (size_t i = 0; i < devices.value().size(); ++i) {
    const device_info& d = devices.value()[i];
    EXPECT_EQ(d.index, i);
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.api_version, 0u) << d.name;
    EXPECT_GT(d.max_storage_buffer_range, 0u) << d.name;
  }
}

TEST(vulkan, unknown_device_name_is_no_device) {
  auto ctx = context::create({.device = "no-such-gpu-x9"});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, errc::no_device);
  EXPECT_EQ(ctx.error().code.category().name(), std::string("vulkan"));
  EXPECT_THAT(ctx.error().message, HasSubstr("no-such-gpu-x9"));
  EXPECT_THAT(ctx.error().message, HasSubstr("devices: 0: '"));  // lists what exists
}

TEST(vulkan, out_of_range_index_is_no_device) {
  auto ctx = context::create({.device = "999"});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, errc::no_device);
  EXPECT_THAT(ctx.error().message, HasSubstr("'999'"));
}

TEST(vulkan, environment_names_the_device_when_options_do_not) {
  std::optional<result<context>> ctx;
  {
    scoped_env device("TRIAGE_VULKAN_DEVICE", "no-such-gpu-from-env");
    ctx.emplace(context::create({.allow_cpu = true}));
  }
  ASSERT_FALSE(*ctx);
  EXPECT_EQ(ctx->error().code, errc::no_device);
  EXPECT_THAT(ctx->error().message, HasSubstr("TRIAGE_VULKAN_DEVICE='no-such-gpu-from-env'"));
}

TEST(vulkan, no_driver_is_no_loader) {
  // The loader reads these at every vkCreateInstance (VK_DRIVER_FILES since
  // loader 1.3.207, VK_ICD_FILENAMES before).
  std::optional<result<context>> ctx;
  {
    scoped_env drivers("VK_DRIVER_FILES", "/nonexistent/triage_icd.json");
    scoped_env icds("VK_ICD_FILENAMES", "/nonexistent/triage_icd.json");
    ctx.emplace(context::create({.allow_cpu = true}));
  }
  ASSERT_FALSE(*ctx);
  EXPECT_EQ(ctx->error().code, errc::no_loader);
  EXPECT_THAT(ctx->error().message, HasSubstr("vkCreateInstance"));
}

TEST(vulkan, selects_a_device_by_index_and_by_name) {
  auto best = context::create({.allow_cpu = true});
  ASSERT_TRUE(best) << best.error().what();
  const device_info& info = best.value().device();

  auto by_index = context::create({.device = std::to_string(info.index)});
  ASSERT_TRUE(by_index) << by_index.error().what();
  EXPECT_EQ(by_index.value().device().name, info.name);

  // Case-insensitive substring: the first word of the name, upper-cased.
  std::string word = info.name.substr(0, info.name.find(' '));
  for (char& c : word) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto by_name = context::create({.device = word});
  ASSERT_TRUE(by_name) << by_name.error().what();
  EXPECT_THAT(by_name.value().device().name, HasSubstr(info.name.substr(0, word.size())));
}

TEST(vulkan, rejects_a_buffer_count_that_does_not_match_the_pipeline) {
  auto ctx = context::create({.allow_cpu = true});
  ASSERT_TRUE(ctx) << ctx.error().what();
  auto add = ctx.value().create_pipeline(*shaders::find("add_f32"),
                                         {.binding_count = 3, .push_constant_size = 4});
  ASSERT_TRUE(add) << add.error().what();
  auto a = ctx.value().create_buffer(16);
  ASSERT_TRUE(a) << a.error().what();
  const buffer* bindings[] = {&a.value()};
  const uint32_t count = 4;
  auto r =
      ctx.value().dispatch(add.value(), bindings, std::as_bytes(std::span(&count, 1)), {1, 1, 1});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_THAT(r.error().message, HasSubstr("'add_f32'"));
}

// Runs add_<type> over the elements of a and b on the device and returns c.
// The buffers are one workgroup longer than the data, with ones after a's and
// b's data, and the function fails the test if anything lands after c's: that
// is what add.comp's bounds check prevents.
template <class T>
std::vector<T> add_on_device(context& ctx, const char* shader, const std::vector<T>& a,
                             const std::vector<T>& b) {
  const uint32_t n = static_cast<uint32_t>(a.size());
  const size_t padded = n + workgroup_size;
  auto p = ctx.create_pipeline(*shaders::find(shader), {.binding_count = 3,
                                                        .push_constant_size = sizeof(uint32_t),
                                                        .workgroup_size = {workgroup_size, 1, 1}});
  EXPECT_TRUE(p) << p.error().what();
  auto buf_a = ctx.create_buffer(padded * sizeof(T));
  auto buf_b = ctx.create_buffer(padded * sizeof(T));
  auto buf_c = ctx.create_buffer(padded * sizeof(T));
  EXPECT_TRUE(buf_a && buf_b && buf_c);
  if (!p || !buf_a || !buf_b || !buf_c) return {};
  std::fill(buf_a.value().as<T>().begin(), buf_a.value().as<T>().end(), T{1});
  std::fill(buf_b.value().as<T>().begin(), buf_b.value().as<T>().end(), T{1});
  std::copy(a.begin(), a.end(), buf_a.value().as<T>().begin());
  std::copy(b.begin(), b.end(), buf_b.value().as<T>().begin());

  const buffer* bindings[] = {&buf_a.value(), &buf_b.value(), &buf_c.value()};
  auto r = ctx.dispatch(p.value(), bindings, std::as_bytes(std::span(&n, 1)),
                        {div_ceil(n, workgroup_size), 1, 1});
  EXPECT_TRUE(r) << r.error().what();
  std::span<const T> c = buf_c.value().as<T>();
  for (size_t i = n; i < padded; ++i) {
    EXPECT_EQ(c[i], T{0}) << "written past the end: element " << i << ", count " << n;
  }
  return {c.begin(), c.begin() + n};
}

class vulkan_add : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    auto ctx = context::create({.allow_cpu = true});
    ASSERT_TRUE(ctx) << ctx.error().what();
    ctx_.emplace(std::move(ctx).value());
  }
  std::optional<context> ctx_;
};

TEST_P(vulkan_add, f32_matches_cpu_exactly) {
  const uint32_t n = GetParam();
  std::mt19937 rng(n);
  // Normal floats only: a device may flush denormals, the CPU does not.
  std::uniform_real_distribution<float> dist(-1000.0f, 1000.0f);
  std::vector<float> a(n), b(n), expected(n);
  for (uint32_t i = 0; i < n; ++i) {
    a[i] = dist(rng);
    b[i] = dist(rng);
    expected[i] = a[i] + b[i];
  }
  const std::vector<float> c = add_on_device(*ctx_, "add_f32", a, b);
  ASSERT_EQ(c.size(), n);
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_EQ(c[i], expected[i]) << "element " << i << " of " << n;
  }
}

TEST_P(vulkan_add, u32_variant_matches_cpu_exactly) {
  const uint32_t n = GetParam();
  std::mt19937 rng(n + 1);
  std::vector<uint32_t> a(n), b(n), expected(n);
  for (uint32_t i = 0; i < n; ++i) {
    a[i] = rng();
    b[i] = rng();
    expected[i] = a[i] + b[i];  // wraps modulo 2^32, as uint does in GLSL
  }
  const std::vector<uint32_t> c = add_on_device(*ctx_, "add_u32", a, b);
  ASSERT_EQ(c.size(), n);
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_EQ(c[i], expected[i]) << "element " << i << " of " << n;
  }
}

// Sizes around the workgroup size, so the last workgroup is partly used and
// the bounds check in add.comp matters.
INSTANTIATE_TEST_SUITE_P(sizes, vulkan_add, ::testing::Values(1u, 63u, 64u, 65u, 1000u, 100003u));

// Device-local buffers, mapped where the device lets the host see them and
// through staging copies otherwise (map_device_memory off runs that path on
// lavapipe, where all memory is host-visible): what write() puts in comes
// back from read() and feeds a dispatch, at any offset, across the 16 MiB
// staging pieces, and a new buffer reads back as zeros.
class vulkan_device_memory : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto ctx = context::create(
        {.allow_cpu = true, .validation = validation_layer_available(), .map_device_memory = GetParam()});
    ASSERT_TRUE(ctx) << ctx.error().what();
    ctx_.emplace(std::move(ctx).value());
  }
  // The transfers' barriers and usages pass the validation layer.
  void TearDown() override {
    if (ctx_) {
      const auto messages = ctx_->validation_messages();
      EXPECT_TRUE(messages.empty()) << messages.size() << " messages, the first: " << messages.front();
    }
  }
  std::optional<context> ctx_;
};

TEST_P(vulkan_device_memory, write_read_and_dispatch_round_trip) {
  context& ctx = *ctx_;
  // 16 MiB + 12 bytes of floats: two staging pieces.
  const uint32_t n = (16u << 20) / 4 + 3;
  auto a = ctx.create_buffer(n * 4, memory_use::device);
  auto b = ctx.create_buffer(n * 4, memory_use::device);
  auto c = ctx.create_buffer(n * 4, memory_use::device);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a.value().mapped(), GetParam());
  if (!a.value().mapped()) {
    EXPECT_TRUE(a.value().bytes().empty());
  }

  std::vector<float> zeros(n, -1.0f);
  ASSERT_TRUE(ctx.read(c.value(), std::as_writable_bytes(std::span(zeros))));
  EXPECT_EQ(std::count(zeros.begin(), zeros.end(), 0.0f), n) << "a new device buffer is not zero";

  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-100.0f, 100.0f);
  std::vector<float> x(n), y(n);
  for (uint32_t i = 0; i < n; ++i) x[i] = dist(rng), y[i] = dist(rng);
  ASSERT_TRUE(ctx.write(a.value(), std::as_bytes(std::span(x))));
  ASSERT_TRUE(ctx.write(b.value(), std::as_bytes(std::span(y))));
  std::vector<float> back(n);
  ASSERT_TRUE(ctx.read(a.value(), std::as_writable_bytes(std::span(back))));
  EXPECT_EQ(back, x);

  // 256 per workgroup: n / 64 groups would pass the 65535 every device allows.
  auto p = ctx.create_pipeline(*shaders::find("add_f32"), {.binding_count = 3,
                                                           .push_constant_size = sizeof(uint32_t),
                                                           .workgroup_size = {256, 1, 1}});
  ASSERT_TRUE(p) << p.error().what();
  const buffer* bindings[] = {&a.value(), &b.value(), &c.value()};
  auto run = ctx.dispatch(p.value(), bindings, std::as_bytes(std::span(&n, 1)), {div_ceil(n, 256), 1, 1});
  ASSERT_TRUE(run) << run.error().what();
  ASSERT_TRUE(ctx.read(c.value(), std::as_writable_bytes(std::span(back))));
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(back[i], x[i] + y[i]) << "element " << i;

  // A part, at an offset: the rest stays as it was.
  const std::vector<float> part = {1.5f, 2.5f, 3.5f};
  ASSERT_TRUE(ctx.write(c.value(), std::as_bytes(std::span(part)), 40));
  std::vector<float> got(5);
  ASSERT_TRUE(ctx.read(c.value(), std::as_writable_bytes(std::span(got)), 36));
  EXPECT_EQ(got, (std::vector<float>{x[9] + y[9], 1.5f, 2.5f, 3.5f, x[13] + y[13]}));
}

TEST_P(vulkan_device_memory, out_of_range_and_mid_recording_transfers_are_refused) {
  context& ctx = *ctx_;
  auto a = ctx.create_buffer(64, memory_use::device);
  ASSERT_TRUE(a) << a.error().what();
  std::vector<std::byte> data(32);
  auto past = ctx.write(a.value(), data, 40);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code, errc::invalid_argument);
  EXPECT_THAT(past.error().message, HasSubstr("32 bytes at offset 40"));
  EXPECT_FALSE(ctx.read(a.value(), data, 33));
  if (!GetParam()) {
    ASSERT_TRUE(ctx.begin());
    auto open = ctx.write(a.value(), data);
    ASSERT_FALSE(open);
    EXPECT_THAT(open.error().message, HasSubstr("recording is open"));
  }
}

INSTANTIATE_TEST_SUITE_P(mapped, vulkan_device_memory, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "mapped" : "staged"; });

}  // namespace
}  // namespace triage::vulkan
