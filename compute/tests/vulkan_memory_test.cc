// Where vk_model keeps its weights, KV cache and activations makes no
// difference to what it computes: SmolLM2 with device-local memory mapped
// (lavapipe, integrated GPUs) and the same with every device buffer written
// and read through staging copies (context_options::map_device_memory off:
// the path a discrete GPU takes) give bit-identical pooled states, logits and
// decode steps, with the validation layer reporting nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "compute/model/model.h"
#include "compute/tests/vulkan_test_util.h"
#include "compute/tokenizer/tokenizer.h"
#include "compute/vulkan/vk_model.h"

namespace triage::vulkan {
namespace {

class vulkan_memory : public test::smollm2_fixture {};

TEST_F(vulkan_memory, staged_device_buffers_give_the_mapped_results_bit_for_bit) {
  const std::vector<std::vector<int32_t>> seqs = {tok->encode("Refund please"),
                                                  tok->encode("My card was charged twice.")};
  const model::forward_options fo{.pool = model::pooling::both, .want_logits = true};

  struct run {
    model::prefill_result prefill;
    std::vector<float> step;  // logits after decoding seqs[1] then one token
  };
  auto run_with = [&](bool map) -> run {
    run out;
    auto m = vk_model::load(path.string(), {.device = {.allow_cpu = true,
                                                       .validation = test::validate(),
                                                       .map_device_memory = map}});
    EXPECT_TRUE(m) << m.error().what();
    if (!m) return out;
    auto r = m.value().forward(seqs, fo);
    EXPECT_TRUE(r) << r.error().what();
    if (r) out.prefill = std::move(r).value();
    auto cache = m.value().make_cache(64);
    EXPECT_TRUE(cache) << cache.error().what();
    if (!cache) return out;
    out.step.resize(static_cast<size_t>(m.value().cfg().vocab_size));
    auto e1 = m.value().extend(cache.value(), seqs[1], out.step);
    EXPECT_TRUE(e1) << e1.error().what();
    const int32_t next = 42;
    auto e2 = m.value().extend(cache.value(), std::span(&next, 1), out.step);
    EXPECT_TRUE(e2) << e2.error().what();
    for (const auto& msg : m.value().validation_messages()) ADD_FAILURE() << "validation: " << msg;
    return out;
  };
  const run mapped = run_with(true);
  const run staged = run_with(false);
  ASSERT_FALSE(mapped.prefill.last.empty());
  EXPECT_EQ(staged.prefill.last, mapped.prefill.last);
  EXPECT_EQ(staged.prefill.mean, mapped.prefill.mean);
  EXPECT_EQ(staged.prefill.logits, mapped.prefill.logits);
  EXPECT_EQ(staged.step, mapped.step);
  // And both are the model's output, not zeros from an upload that went nowhere.
  const auto ref = cpu->forward(seqs, fo);
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < ref.logits.size(); ++i) {
    ab += double(staged.prefill.logits[i]) * ref.logits[i];
    aa += double(staged.prefill.logits[i]) * staged.prefill.logits[i];
    bb += double(ref.logits[i]) * ref.logits[i];
  }
  EXPECT_GT(ab / std::sqrt(aa * bb), 0.99) << "logits cosine against the CPU engine";
}

}  // namespace
}  // namespace triage::vulkan
