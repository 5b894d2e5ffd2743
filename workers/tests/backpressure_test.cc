// Backpressure, rebalances during a batch and bounded shutdown of the Kafka
// worker, on librdkafka's in-process mock cluster. The backend is a gate: it
// classifies like the null backend but blocks, from a chosen batch on, until
// the test opens it, so a "long batch" lasts exactly as long as the test
// wants. The mock cluster of librdkafka 2.0 has no transactional offset
// commits, so these run at-least-once; without faults at-least-once must
// still give each record exactly one output, which is what they check (a
// record read twice after a resume, or skipped, would show). Exactly-once
// under SIGTERM on a real broker: tests/worker_e2e_test.cc.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <librdkafka/rdkafkacpp.h>

#include "tests/kafka_test_util.h"
#include "workers/tests/mock_cluster.h"
#include "workers/tests/gate_backend.h"
#include "workers/backend.h"
#include "workers/topics.h"
#include "workers/worker.h"

namespace triage {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

const std::vector<std::string> categories = {"cards", "payments", "account", "disputes"};

// One worker on its own thread.
struct running_worker {
  std::unique_ptr<workers::kafka_worker> worker;
  std::thread thread;
  std::atomic<bool> stop{false}, returned{false};
  std::string error;

  // Creates the worker here (so a failure shows at once) and runs it.
  void start(const topology::config& cfg, workers::backend& model, const workers::kafka_worker::options& o) {
    auto w = workers::kafka_worker::create(cfg, model, o);
    ASSERT_TRUE(w) << w.error().message;
    worker = std::move(w.value());
    thread = std::thread([this] {
      auto done = worker->run(stop);
      if (!done) error = done.error().message;
      returned = true;
    });
  }
  // Whether run() returned within `limit`.
  bool wait_returned(std::chrono::seconds limit) {
    const auto until = clock::now() + limit;
    while (!returned && clock::now() < until) std::this_thread::sleep_for(20ms);
    return returned;
  }
  void join() {
    if (thread.joinable()) thread.join();
  }
  ~running_worker() {
    stop = true;
    join();
  }
};

template <class Pred>
bool eventually(Pred pred, std::chrono::seconds limit) {
  const auto until = clock::now() + limit;
  while (clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

class backpressure : public testing::mock_cluster_test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(start_cluster(1, "backpressure-test", categories));
    cfg_.kafka.settings["heartbeat.interval.ms"] = "500";
    cfg_.worker.batch_max_tickets = 8;
    cfg_.worker.batch_max_wait_ms = 5;
    cfg_.worker.queue_max_tickets = 20;
    cfg_.worker.shutdown_timeout_ms = 2000;
  }

  // Every ticket T-0..T-(n-1) exactly once across the output topics.
  void expect_each_once(int n) {
    auto names = workers::topic_names(cfg_, categories);
    names.erase(names.begin());  // the input
    const auto records =
        testing::consume_all(cfg_.kafka.settings.at("bootstrap.servers"), names, static_cast<size_t>(n), 60s);
    std::map<std::string, int> seen;
    for (const auto& r : records) ++seen[r.key];
    for (int i = 0; i < n; ++i) {
      const auto it = seen.find("T-" + std::to_string(i));
      if (it == seen.end()) {
        ADD_FAILURE() << "ticket T-" << i << " lost";
      } else {
        EXPECT_EQ(it->second, 1) << "ticket T-" << i << " produced " << it->second << " times";
      }
    }
    EXPECT_EQ(records.size(), static_cast<size_t>(n));
  }

};

// A backend slower than the stream: the queue fills to its bound, the
// partitions pause; the worker keeps polling, so a batch longer than
// max.poll.interval.ms does not cost it its group membership; once the
// backend goes on, the partitions resume and every record comes out once.
TEST_F(backpressure, full_queue_pauses_partitions_and_resumes_them_without_loss_or_duplicates) {
  const int n = 300;
  produce(0, n);
  // The shortest poll interval librdkafka accepts with this session timeout.
  cfg_.kafka.settings["max.poll.interval.ms"] = "6000";
  testing::gate_backend model(categories, 1);  // the first batch goes through, the second waits
  running_worker w;
  testing::gate_opener opener{model};
  w.start(cfg_, model, {.worker_id = "bp", .max_records = n});
  ASSERT_TRUE(model.wait_blocked(60s)) << "the worker never classified a second batch";

  ASSERT_TRUE(eventually([&] { return w.worker->backpressure().paused_partitions > 0; }, 60s))
      << "the queue filled (" << w.worker->backpressure().queued_tickets << " tickets) but nothing was paused";
  // While paused, the queue stays within its bound; held past
  // max.poll.interval.ms, the classification must not make the worker leave
  // the group (librdkafka would if consume() were not called meanwhile).
  const auto hold_until = clock::now() + 8s;
  uint64_t most = 0;
  while (clock::now() < hold_until) {
    const auto bp = w.worker->backpressure();
    most = std::max(most, bp.queued_tickets);
    EXPECT_TRUE(bp.classifying);
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_LE(most, static_cast<uint64_t>(cfg_.worker.queue_max_tickets));
  EXPECT_EQ(w.worker->backpressure().paused_partitions, static_cast<uint64_t>(cfg_.topics.partitions));
  EXPECT_EQ(model.calls(), 2u) << "a batch was classified while the backend was busy";

  model.open();
  ASSERT_TRUE(w.wait_returned(120s)) << "the worker did not finish";
  w.join();
  ASSERT_TRUE(w.error.empty()) << w.error;
  const auto& s = w.worker->stats();
  EXPECT_EQ(s.consumed, static_cast<uint64_t>(n));
  EXPECT_GE(s.pauses, 1u);
  EXPECT_GE(s.resumes, 1u);
  EXPECT_LE(s.queue_peak, static_cast<uint64_t>(cfg_.worker.queue_max_tickets));
  // The assignment, and the revocation as it left: nothing in between.
  EXPECT_EQ(s.rebalances, 2u) << "the worker lost its partitions while the backend was busy";
  EXPECT_EQ(s.batches_abandoned, 0u);
  expect_each_once(n);
}

// The token bound pauses too, with room for many tickets.
TEST_F(backpressure, token_bound_pauses_before_the_ticket_bound) {
  const int n = 120;
  produce(0, n);
  cfg_.worker.queue_max_tickets = 1000;
  cfg_.worker.queue_max_tokens = 64;  // about 5 tickets of ~50 bytes
  testing::gate_backend model(categories, 0);
  running_worker w;
  testing::gate_opener opener{model};
  w.start(cfg_, model, {.worker_id = "bp-tokens", .max_records = n});
  ASSERT_TRUE(model.wait_blocked(60s));
  ASSERT_TRUE(eventually([&] { return w.worker->backpressure().paused_partitions > 0; }, 60s));
  const auto bp = w.worker->backpressure();
  EXPECT_LT(bp.queued_tickets, 20u);
  // At most one record's tokens past the bound: it is checked after each push.
  EXPECT_LT(bp.queued_tokens, 64u + 20u);
  model.open();
  ASSERT_TRUE(w.wait_returned(120s));
  w.join();
  ASSERT_TRUE(w.error.empty()) << w.error;
  EXPECT_GE(w.worker->stats().pauses, 1u);
  expect_each_once(n);
}

// SIGTERM while the backend is stuck in a batch: run() returns within the
// shutdown timeout without waiting for the backend, nothing of the batch is
// produced or committed (not even once the backend returns after all), and
// a restarted worker finishes the stream with every record once.
TEST_F(backpressure, stop_during_a_stuck_batch_returns_and_abandons_it) {
  const int n = 100;
  produce(0, n);
  testing::gate_backend model(categories, 0);
  {
    running_worker w;
    testing::gate_opener opener{model};
    w.start(cfg_, model, {.worker_id = "bp-stop"});
    ASSERT_TRUE(model.wait_blocked(60s));
    w.stop = true;
    // Returns (leaving the group) while the backend is still blocked.
    ASSERT_TRUE(w.wait_returned(30s)) << "run() waited for the stuck backend past the shutdown timeout";
    EXPECT_TRUE(model.blocked());
    w.join();
    EXPECT_TRUE(w.error.empty()) << w.error;
    EXPECT_EQ(w.worker->stats().consumed, 0u);
    EXPECT_EQ(w.worker->stats().batches_abandoned, 1u);
    // The backend returns after all; the destructor waits for it, and the
    // abandoned outputs must go nowhere.
    model.open();
  }
  testing::gate_backend open_model(categories, 1000000);
  running_worker again;
  again.start(cfg_, open_model, {.worker_id = "bp-stop", .max_records = n});
  ASSERT_TRUE(again.wait_returned(120s));
  again.join();
  ASSERT_TRUE(again.error.empty()) << again.error;
  EXPECT_EQ(again.worker->stats().consumed, static_cast<uint64_t>(n));
  expect_each_once(n);
}

// SIGTERM while a batch is classified, and the backend finishes in time: the
// batch is committed before the worker leaves; the rest is read by the next
// worker, nothing twice.
TEST_F(backpressure, stop_during_a_batch_that_finishes_in_time_commits_it) {
  const int n = 100;
  produce(0, n);
  cfg_.worker.shutdown_timeout_ms = 20000;
  testing::gate_backend model(categories, 0);
  uint64_t first = 0;
  {
    running_worker w;
    testing::gate_opener opener{model};
    w.start(cfg_, model, {.worker_id = "bp-finish"});
    ASSERT_TRUE(model.wait_blocked(60s));
    // Let the worker see the stop (it drops the full queue) before the
    // batch comes back.
    ASSERT_TRUE(eventually([&] { return w.worker->backpressure().paused_partitions > 0; }, 60s));
    w.stop = true;
    ASSERT_TRUE(eventually([&] { return w.worker->backpressure().queued_tickets == 0; }, 30s));
    model.open();
    ASSERT_TRUE(w.wait_returned(30s));
    w.join();
    ASSERT_TRUE(w.error.empty()) << w.error;
    first = w.worker->stats().consumed;
    EXPECT_GT(first, 0u) << "the batch in flight was not committed";
    EXPECT_LE(first, static_cast<uint64_t>(cfg_.worker.batch_max_tickets));
    EXPECT_EQ(w.worker->stats().batches_abandoned, 0u);
  }
  testing::gate_backend open_model(categories, 1000000);
  running_worker again;
  again.start(cfg_, open_model, {.worker_id = "bp-finish", .max_records = n - first});
  ASSERT_TRUE(again.wait_returned(120s));
  again.join();
  ASSERT_TRUE(again.error.empty()) << again.error;
  expect_each_once(n);
}

// A second worker joins while the first is stuck in a batch with its
// partitions paused: the revocation drops the first worker's queue and
// abandons its batch (never produced), its partitions are not left paused,
// and between them the two workers produce every record once.
TEST_F(backpressure, revocation_during_a_batch_abandons_it_and_forgets_paused_partitions) {
  const int n = 240;
  produce(0, n);
  testing::gate_backend stuck(categories, 0);
  running_worker a;
  testing::gate_opener opener{stuck};
  a.start(cfg_, stuck, {.worker_id = "bp-a", .idle_exit_ms = 6000});
  ASSERT_TRUE(stuck.wait_blocked(60s));
  ASSERT_TRUE(eventually([&] { return a.worker->backpressure().paused_partitions > 0; }, 60s));

  testing::gate_backend fine(categories, 1000000);
  running_worker b;
  // Its idle time counts from the start, before the group has given it
  // anything: long enough for the rebalance on a loaded machine (with 15 s,
  // at load 4, it twice left before getting a partition).
  b.start(cfg_, fine, {.worker_id = "bp-b", .idle_exit_ms = 45000});
  // The rebalance gave the second worker partitions, and it got going.
  ASSERT_TRUE(eventually([&] { return fine.calls() > 0; }, 60s)) << "the second worker never got a partition";
  // The first one lost its queue and its pauses with the revocation; it
  // holds at most the partitions it was given back.
  EXPECT_LT(a.worker->backpressure().paused_partitions, static_cast<uint64_t>(cfg_.topics.partitions));
  stuck.open();
  ASSERT_TRUE(a.wait_returned(120s));
  ASSERT_TRUE(b.wait_returned(120s));
  a.join();
  b.join();
  ASSERT_TRUE(a.error.empty()) << a.error;
  ASSERT_TRUE(b.error.empty()) << b.error;
  EXPECT_GE(a.worker->stats().batches_abandoned, 1u);
  EXPECT_GT(a.worker->stats().rebalances, 1u);
  EXPECT_EQ(a.worker->stats().consumed + b.worker->stats().consumed, static_cast<uint64_t>(n));
  expect_each_once(n);
}

}  // namespace
}  // namespace triage
