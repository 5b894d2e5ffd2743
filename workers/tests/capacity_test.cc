// Capacity-sized instances: how many consumer instances a measured
// throughput justifies, the measurement itself, and the backend the
// instances share.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "workers/backend.h"

namespace triage::workers {
namespace {

TEST(instances_for, one_per_instance_capacity_rounded_within_bounds) {
  EXPECT_EQ(instances_for(65, 20, 8), 3);    // 3.25 -> 3
  EXPECT_EQ(instances_for(70, 20, 8), 4);    // 3.5 -> 4
  EXPECT_EQ(instances_for(5, 20, 8), 1);     // a slow machine still runs one
  EXPECT_EQ(instances_for(0, 20, 8), 1);
  EXPECT_EQ(instances_for(1000, 20, 4), 4);  // capped
  EXPECT_EQ(instances_for(100, 0, 4), 1);    // no unit: one
}

// Counts calls and how many run at once.
class counting_backend final : public backend {
 public:
  std::string name() const override { return "counting"; }
  std::string model_version() const override { return "m"; }
  std::string adapter_version() const override { return "a"; }
  float threshold() const override { return 0.25f; }
  int estimate_tokens(const v1::TicketEvent&) const override { return 7; }
  std::vector<decision> classify(std::span<const v1::TicketEvent* const> tickets) override {
    const int now = ++running;
    int seen = max_running.load();
    while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    --running;
    tickets_seen += static_cast<int>(tickets.size());
    decision d;
    d.category = "x";
    d.confidence = 1;
    return std::vector<decision>(tickets.size(), d);
  }
  std::atomic<int> running{0}, max_running{0}, tickets_seen{0};
};

TEST(shared_backend, forwards_and_serialises_classify) {
  counting_backend inner;
  shared_backend shared(inner);
  EXPECT_EQ(shared.name(), "counting");
  EXPECT_EQ(shared.threshold(), 0.25f);
  EXPECT_EQ(shared.estimate_tokens(v1::TicketEvent{}), 7);
  v1::TicketEvent t;
  const v1::TicketEvent* one[] = {&t};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 10; ++k) EXPECT_EQ(shared.classify(one).size(), 1u);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(inner.tickets_seen.load(), 40);
  EXPECT_EQ(inner.max_running.load(), 1) << "classify calls overlapped";
}

TEST(measure_capacity, times_whole_batches_of_the_sample) {
  counting_backend model;
  const double tps = measure_capacity(model, 8);
  // 16 tickets timed in 2 batches of 8 (plus one warm-up batch), each call
  // sleeping 2 ms: at most 16 / 0.004 s.
  EXPECT_EQ(model.tickets_seen.load(), 8 + 16);
  EXPECT_GT(tps, 0);
  EXPECT_LE(tps, 16 / 0.004);
}

}  // namespace
}  // namespace triage::workers
