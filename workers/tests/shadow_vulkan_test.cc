// Shadow mode with the live features from a Vulkan device (lavapipe where
// there is no GPU): a candidate that is a copy of the live adapter, its head
// run on the device's features, decides exactly what the live adapter does;
// one with another token budget (its own extraction, on the CPU) is an
// engine loaded with it alone.
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compute/classifier/adapter.h"
#include "compute/classifier/engine.h"
#include "compute/tests/test_files.h"
#include "compute/vulkan/context.h"
#include "workers/slm_backend.h"

namespace triage::workers {

// As in compute/tests/vulkan_add_test.cc: a context held for the whole
// process keeps lavapipe loaded, so LeakSanitizer does not report the
// driver's globals (from "<unknown module>") when the last instance goes.
// External linkage so the pointer is kept; intentionally never destroyed.
extern vulkan::context* const keep_driver_loaded;
vulkan::context* const keep_driver_loaded = [] {
  auto ctx = vulkan::context::create({.allow_cpu = true});
  return ctx ? new vulkan::context(std::move(ctx).value()) : nullptr;
}();

namespace {

TEST(shadow_vulkan, a_copy_of_the_live_adapter_agrees_on_the_device_features) {
  ASSERT_TRUE(std::filesystem::exists(test_files::model_path())) << test_files::model_path() << " is missing";
  const char* src = std::getenv("TRIAGE_SOURCE_DIR");
  const std::string live = (std::filesystem::path(src != nullptr ? src : ".") / "topology/adapters/banking.gguf").string();
  const auto dir = std::filesystem::temp_directory_path() / ("triage-shadow-vk-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  auto a = classifier::load_adapter(live);
  ASSERT_TRUE(a) << a.error().message;
  a.value().name = "copy";
  const auto copy = (dir / "copy.gguf").string();
  ASSERT_TRUE(classifier::save_adapter(a.value(), copy));
  a.value().name = "longer";
  a.value().max_tokens += 32;
  const auto longer = (dir / "longer.gguf").string();
  ASSERT_TRUE(classifier::save_adapter(a.value(), longer));

  const std::string model = test_files::model_path().string();
  const std::vector<std::string> texts = {"My card payment was declined twice, why?",
                                          "How do I top up my account with a bank transfer?",
                                          "I lost my card yesterday, please freeze it"};
  std::vector<v1::TicketEvent> ev(texts.size());
  std::vector<const v1::TicketEvent*> batch;
  for (size_t i = 0; i < texts.size(); ++i) {
    ev[i].set_body(texts[i]);
    batch.push_back(&ev[i]);
  }
  auto own = classifier::engine::load({.model = model, .adapter = longer, .threads = 2});
  ASSERT_TRUE(own) << own.error().message;
  const auto want = own.value().classify(texts);

  // One device backend (loading it is most of the time); set_shadow replaces the candidate.
  auto b = slm_backend::load_vulkan({.model = model, .adapter = live, .threads = 2}, {.device = {.allow_cpu = true}});
  ASSERT_TRUE(b) << b.error().message;
  ASSERT_EQ(b.value()->name(), "vulkan");
  for (const auto& path : {copy, longer}) {
    SCOPED_TRACE(path);
    ASSERT_TRUE(b.value()->set_shadow(path));
    const auto d = b.value()->classify(batch);
    ASSERT_EQ(d.size(), texts.size());
    for (size_t i = 0; i < d.size(); ++i) {
      ASSERT_TRUE(d[i].shadow) << i;
      if (path == copy) {
        EXPECT_EQ(d[i].shadow->category, d[i].category) << i;
        EXPECT_FLOAT_EQ(d[i].shadow->confidence, d[i].confidence) << i;
      } else {
        EXPECT_EQ(d[i].shadow->category, own.value().adapter_info().categories[want[i].category]) << i;
        EXPECT_NEAR(d[i].shadow->confidence, want[i].confidence, 1e-5) << i;
      }
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace triage::workers
