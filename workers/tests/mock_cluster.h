// mock_cluster.h: a GoogleTest fixture base for worker tests on librdkafka's
// in-process mock cluster: the cluster with the worker's topics, a config
// that points at it, and a producer of numbered tickets. librdkafka 2.0's
// mock cluster has no transactional offset commits, so the config is
// at-least-once; exactly-once is tested on the real broker.
//
//   class my_test : public testing::mock_cluster_test {
//     void SetUp() override {
//       start_cluster(3, "my-group", {"cards", "payments"});
//       cfg_.worker.batch_max_tickets = 16;   // then what the test needs
//     }
//   };
//   TEST_F(my_test, x) { produce(0, 100); ... }
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <librdkafka/rdkafkacpp.h>

#include "schemas/triage.pb.h"
#include "tests/kafka_test_util.h"
#include "topology/config.h"
#include "workers/topics.h"

namespace triage::testing {

class mock_cluster_test : public ::testing::Test {
 protected:
  // A cluster of `brokers` mock brokers (partition leaders spread over
  // them), every topic of the config for `categories` with 3 partitions,
  // consumer group `group`. Call from SetUp with ASSERT_NO_FATAL_FAILURE.
  void start_cluster(int brokers, const std::string& group, const std::vector<std::string>& categories) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    host_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ASSERT_NE(host_, nullptr) << err;
    mock_ = rd_kafka_mock_cluster_new(host_, brokers);
    ASSERT_NE(mock_, nullptr);
    cfg_.kafka.settings = {{"bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mock_)},
                           {"session.timeout.ms", "6000"},
                           {"log_level", "0"}};
    cfg_.worker.delivery = topology::delivery_mode::at_least_once;
    cfg_.worker.group_id = group;
    cfg_.topics.partitions = 3;
    for (const auto& t : workers::topic_names(cfg_, categories)) {
      rd_kafka_mock_topic_create(mock_, t.c_str(), cfg_.topics.partitions, 1);
    }
    producer_ = make_producer(cfg_.kafka.settings);
  }

  void TearDown() override {
    producer_.reset();
    if (mock_) rd_kafka_mock_cluster_destroy(mock_);
    if (host_) rd_kafka_destroy(host_);
  }

  // Tickets T-first .. T-(first+count-1) on the tickets topic, flushed.
  void produce(int first, int count) {
    for (int i = first; i < first + count; ++i) {
      v1::TicketEvent t;
      t.set_id("T-" + std::to_string(i));
      t.set_body("ticket " + std::to_string(i) + ": my card payment was declined");
      testing::produce(*producer_, cfg_.topics.tickets, t.id(), t.SerializeAsString());
    }
    ASSERT_EQ(producer_->flush(30000), RdKafka::ERR_NO_ERROR);
  }

  rd_kafka_t* host_ = nullptr;
  rd_kafka_mock_cluster_t* mock_ = nullptr;
  topology::config cfg_;
  std::unique_ptr<RdKafka::Producer> producer_;
};

}  // namespace triage::testing
