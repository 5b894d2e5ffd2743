// Fault injection on librdkafka's in-process mock cluster: brokers going
// down mid-stream and requests failing. The worker must recover and finish
// with every input record in the outputs. The mock cluster of librdkafka 2.0
// has no transactional offset commits, so these tests run at-least-once:
// duplicates are allowed, losses are not. Exactly-once under SIGKILL is
// tested on the real broker (tests/worker_e2e_test.cc).
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <librdkafka/rdkafkacpp.h>

#include "tests/kafka_test_util.h"
#include "workers/tests/mock_cluster.h"
#include "workers/backend.h"
#include "workers/topics.h"
#include "workers/worker.h"

namespace triage {
namespace {

using namespace std::chrono_literals;

// Kafka protocol request types (ApiKey), as in the protocol guide.
constexpr int16_t api_produce = 0;
constexpr int16_t api_fetch = 1;
constexpr int16_t api_offset_commit = 8;

const std::vector<std::string> categories = {"cards", "payments", "account", "disputes"};

class worker_fault : public testing::mock_cluster_test {
 protected:
  void SetUp() override {
    // Partition leaders spread over three brokers (replication 1 each).
    ASSERT_NO_FATAL_FAILURE(start_cluster(3, "fault-test", categories));
    cfg_.worker.batch_max_tickets = 16;
    cfg_.worker.batch_max_wait_ms = 20;
    cfg_.worker.shutdown_timeout_ms = 5000;
  }

  std::vector<std::string> output_topics() const {
    auto names = workers::topic_names(cfg_, categories);
    names.erase(names.begin());  // the input
    return names;
  }

  // Starts the worker on a thread; it stops after `n` committed records.
  void start_worker(uint64_t n) {
    worker_ = std::thread([this, n] {
      auto w = workers::kafka_worker::create(cfg_, model_, {.worker_id = "fault", .max_records = n});
      if (!w) {
        error_ = w.error().message;
        return;
      }
      auto done = w.value()->run(stop_);
      if (!done) error_ = done.error().message;
      stats_ = w.value()->stats();
      finished_ = true;
    });
  }

  // Waits for the worker, stopping it after `limit`; true if it finished
  // on its own.
  bool join_worker(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!finished_ && error_.empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    stop_ = true;
    worker_.join();
    return finished_ && error_.empty();
  }

  // Ticket ids found in the output topics (each counted once) and how many
  // output records there were in all.
  std::pair<std::set<std::string>, size_t> outputs(size_t expected) {
    const auto records =
        testing::consume_all(cfg_.kafka.settings.at("bootstrap.servers"), output_topics(), expected, 60s);
    std::set<std::string> ids;
    for (const auto& r : records) ids.insert(r.key);
    return {ids, records.size()};
  }

  // Blocks until the output topics hold at least `n` records.
  void wait_for_outputs(size_t n) {
    const auto records = testing::consume_all(cfg_.kafka.settings.at("bootstrap.servers"),
                                              output_topics(), n, 60s);
    ASSERT_GE(records.size(), n) << "the worker made no progress before the fault";
  }

  // Checks that each of the tickets T-0 .. T-(n-1) reached an output topic,
  // and nothing else did, in at least n records (redelivery may add some).
  void expect_every_ticket_out(int n) {
    auto [ids, total] = outputs(n);
    for (int i = 0; i < n; ++i) {
      EXPECT_TRUE(ids.count("T-" + std::to_string(i))) << "ticket T-" << i << " lost";
    }
    EXPECT_EQ(ids.size(), static_cast<size_t>(n));
    EXPECT_GE(total, static_cast<size_t>(n));
  }

  workers::null_backend model_{categories};
  std::thread worker_;
  std::atomic<bool> stop_{false}, finished_{false};
  std::string error_;
  workers::worker_stats stats_;
};

TEST_F(worker_fault, one_broker_down_mid_stream) {
  const int n = 300;
  produce(0, n / 2);
  start_worker(n);
  wait_for_outputs(40);
  // Broker 1 leads a third of the partitions and may be the coordinator.
  ASSERT_EQ(rd_kafka_mock_broker_set_down(mock_, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  std::this_thread::sleep_for(3s);
  ASSERT_EQ(rd_kafka_mock_broker_set_up(mock_, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  produce(n / 2, n / 2);
  ASSERT_TRUE(join_worker(120s)) << "worker did not finish: " << error_;
  EXPECT_EQ(stats_.routed + stats_.escalated + stats_.dead_lettered, stats_.consumed);
  expect_every_ticket_out(n);
}

TEST_F(worker_fault, whole_cluster_down_then_back) {
  const int n = 200;
  produce(0, n);
  start_worker(n);
  wait_for_outputs(20);
  ASSERT_EQ(rd_kafka_mock_broker_set_down(mock_, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
  std::this_thread::sleep_for(4s);
  ASSERT_EQ(rd_kafka_mock_broker_set_up(mock_, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(join_worker(120s)) << "worker did not finish: " << error_;
  expect_every_ticket_out(n);
}

TEST_F(worker_fault, retriable_request_errors) {
  const int n = 200;
  produce(0, n);
  // Leadership and timeout errors the clients must retry through.
  rd_kafka_mock_push_request_errors(mock_, api_produce, 4,
                                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                    RD_KAFKA_RESP_ERR__TRANSPORT);
  rd_kafka_mock_push_request_errors(mock_, api_fetch, 3,
                                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                    RD_KAFKA_RESP_ERR__TRANSPORT,
                                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  rd_kafka_mock_push_request_errors(mock_, api_offset_commit, 2,
                                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                    RD_KAFKA_RESP_ERR__TRANSPORT);
  start_worker(n);
  ASSERT_TRUE(join_worker(120s)) << "worker did not finish: " << error_;
  expect_every_ticket_out(n);
}

TEST_F(worker_fault, rejected_produce_is_retried_from_the_committed_offsets) {
  const int n = 120;
  produce(0, n);
  // Errors the producer does not retry: the batch's delivery fails, the
  // worker must rewind and process it again rather than commit past it.
  rd_kafka_mock_push_request_errors(mock_, api_produce, 2,
                                    RD_KAFKA_RESP_ERR_INVALID_RECORD,
                                    RD_KAFKA_RESP_ERR_INVALID_RECORD);
  start_worker(n);
  ASSERT_TRUE(join_worker(120s)) << "worker did not finish: " << error_;
  // Had the worker committed past the failed batch, its tickets would be
  // missing here.
  expect_every_ticket_out(n);
}

}  // namespace
}  // namespace triage
