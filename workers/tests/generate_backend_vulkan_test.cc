// generate mode on a Vulkan device (lavapipe where there is no GPU): the
// generate backend with backend "vulkan-required" decodes on the device
// (vk_decoder) and gives the CPU backend's decision for a ticket (same
// category and urgency, confidence within 0.1); "vulkan" without a usable
// device falls back to the CPU, "vulkan-required" fails with the device's
// error, and an unknown backend is named.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "compute/tests/vulkan_test_util.h"
#include "compute/vulkan/errc.h"
#include "workers/commands.h"
#include "workers/generate_backend.h"

namespace {

using namespace triage;

std::string source_dir() {
  const char* s = std::getenv("TRIAGE_SOURCE_DIR");
  return s != nullptr ? s : ".";
}

class generate_backend_vulkan : public ::testing::Test {
 protected:
  void SetUp() override {
    // Keeps lavapipe loaded for the whole program: the backends here open
    // and close their own contexts, and unloading the driver would make
    // LeakSanitizer report its globals (compute/tests/vulkan_test_util.h).
    (void)vulkan::test::shared_context();
    const auto model = workers::model_path_or_default("");
    ASSERT_TRUE(std::filesystem::exists(model)) << model << " missing (ops/setup.sh)";
    opts.model = model;
    opts.taxonomy = source_dir() + "/data/banking77/taxonomy.csv";
    opts.threads = 2;
    // A short prompt: lavapipe prefills ~20 tokens/s.
    opts.generate.system_prompt = "Classify the bank customer's message. Answer with JSON. Categories: {categories}.";
    opts.generate.max_tokens = 128;
    opts.generate.max_expansions = 3;
    opts.device.device.allow_cpu = true;
  }
  workers::generate_backend_options opts;
};

TEST_F(generate_backend_vulkan, decodes_on_the_device_and_agrees_with_the_cpu) {
  opts.backend = "vulkan-required";
  auto gpu = workers::generate_backend::load(opts);
  ASSERT_TRUE(gpu) << gpu.error().message;
  EXPECT_EQ(gpu.value()->name(), "vulkan-generate");
  ASSERT_NE(gpu.value()->device_model(), nullptr);
  opts.backend = "cpu";
  auto cpu = workers::generate_backend::load(opts);
  ASSERT_TRUE(cpu) << cpu.error().message;
  EXPECT_EQ(cpu.value()->name(), "cpu-generate");

  v1::TicketEvent t;
  t.set_subject("Card payment declined");
  t.set_body("My card was declined at the shop although I have money on the account.");
  const v1::TicketEvent* ptrs[] = {&t};
  const auto g = gpu.value()->classify(ptrs);
  const auto c = cpu.value()->classify(ptrs);
  ASSERT_EQ(g.size(), 1u);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(g[0].category, c[0].category);
  EXPECT_EQ(g[0].urgency, c[0].urgency);
  EXPECT_LT(std::abs(g[0].confidence - c[0].confidence), 0.1f)
      << "Vulkan " << g[0].confidence << ", CPU " << c[0].confidence;
  EXPECT_EQ(g[0].alternatives.size(), 2u);
}

TEST_F(generate_backend_vulkan, without_a_device_falls_back_or_fails_as_asked) {
  opts.device.device.device = "no-such-vulkan-device";
  opts.backend = "vulkan";
  auto b = workers::generate_backend::load(opts);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b.value()->name(), "cpu-generate");
  EXPECT_EQ(b.value()->device_model(), nullptr);

  opts.backend = "vulkan-required";
  b = workers::generate_backend::load(opts);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, vulkan::errc::no_device) << b.error().message;

  opts.backend = "tpu";
  b = workers::generate_backend::load(opts);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("'tpu'"), std::string::npos) << b.error().message;
}

}  // namespace
