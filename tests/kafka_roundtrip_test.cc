// Produces and consumes through a real Apache Kafka broker (the kafka_broker
// fixture, ops/kafka.sh) with librdkafka: tickets survive the trip byte for
// byte, malformed records are recognised as such, and transactions work
// (aborted records stay invisible to read_committed consumers), which
// librdkafka's mock cluster cannot show.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "schemas/codec.h"
#include "tests/kafka_test_util.h"
#include "workers/kafka_conf.h"
#include "workers/topics.h"

namespace triage {
namespace {

using namespace std::chrono_literals;

using testing::bootstrap;
using testing::unique_name;

class kafka_roundtrip : public ::testing::Test {
 protected:
  void SetUp() override {
    servers_ = bootstrap();
    ASSERT_FALSE(servers_.empty())
        << "no broker: run under ctest (kafka_broker fixture) or set TRIAGE_KAFKA_BOOTSTRAP";
  }

  workers::settings_map base() const { return {{"bootstrap.servers", servers_}}; }

  // Creates `topic` with `partitions` partitions through the Admin API.
  void create_topic(const std::string& topic, int partitions) {
    topology::config cfg;
    cfg.kafka.settings = base();
    cfg.topics.partitions = partitions;
    auto ok = workers::create_topics(cfg, {topic});
    ASSERT_TRUE(ok) << ok.error().message;
  }

  std::unique_ptr<RdKafka::Producer> producer(const workers::settings_map& extra) {
    workers::settings_map settings = base();
    settings.insert(extra.begin(), extra.end());
    return testing::make_producer(settings);
  }

  void produce(RdKafka::Producer& p, const std::string& topic, const std::string& key,
               const std::string& value) {
    testing::produce(p, topic, key, value);
  }

  // Value by key, read back with read_committed.
  std::multimap<std::string, std::string> consume_all(const std::string& topic, size_t expected) {
    std::multimap<std::string, std::string> out;
    for (auto& r : testing::consume_all(servers_, {topic}, expected)) out.emplace(r.key, r.value);
    return out;
  }

  std::string servers_;
};

TEST_F(kafka_roundtrip, tickets_and_malformed_records_cross_the_broker_exactly_once) {
  const std::string topic = unique_name("tickets");
  create_topic(topic, 3);
  auto p = producer({{"enable.idempotence", "true"}});
  ASSERT_TRUE(p);

  constexpr int n = 300;
  for (int i = 0; i < n; ++i) {
    v1::TicketEvent t;
    t.set_id("T-" + std::to_string(i));
    t.set_body("My card payment number " + std::to_string(i) + " was declined \xF0\x9F\x98\x9E");
    t.set_channel(i % 2 ? v1::CHANNEL_EMAIL : v1::CHANNEL_CHAT);
    // Every third ticket as JSON, the way some producers send them.
    produce(*p, topic, t.id(), i % 3 == 0 ? schemas::to_json(t) : t.SerializeAsString());
  }
  produce(*p, topic, "bad-json", R"({"body": "unterminated)");
  produce(*p, topic, "bad-utf8", "{\"body\":\"\xC3(\"}");
  produce(*p, topic, "no-body", R"({"id":"x"})");
  ASSERT_EQ(p->flush(30000), RdKafka::ERR_NO_ERROR);

  const auto records = consume_all(topic, n + 3);
  ASSERT_EQ(records.size(), static_cast<size_t>(n + 3));
  std::set<std::string> ids;
  for (const auto& [key, value] : records) {
    auto ticket = schemas::decode_ticket(value);
    if (key == "bad-json") {
      ASSERT_FALSE(ticket);
      EXPECT_EQ(ticket.error().code, schemas::errc::bad_json);
    } else if (key == "bad-utf8") {
      ASSERT_FALSE(ticket);
      EXPECT_EQ(ticket.error().code, schemas::errc::invalid_utf8);
    } else if (key == "no-body") {
      ASSERT_FALSE(ticket);
      EXPECT_EQ(ticket.error().code, schemas::errc::missing_body);
    } else {
      ASSERT_TRUE(ticket) << key << ": " << ticket.error().message;
      EXPECT_EQ(ticket.value().id(), key);
      EXPECT_TRUE(ids.insert(key).second) << "duplicate " << key;
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(n));
}

TEST_F(kafka_roundtrip, aborted_transactions_stay_invisible_to_read_committed) {
  const std::string topic = unique_name("txn");
  create_topic(topic, 2);
  auto p = producer({{"transactional.id", unique_name("triage-test")}});
  ASSERT_TRUE(p);
  std::unique_ptr<RdKafka::Error> e(p->init_transactions(30000));
  ASSERT_FALSE(e) << e->str();

  e.reset(p->begin_transaction());
  ASSERT_FALSE(e) << e->str();
  for (int i = 0; i < 20; ++i) produce(*p, topic, "aborted-" + std::to_string(i), "{\"body\":\"x\"}");
  ASSERT_EQ(p->flush(30000), RdKafka::ERR_NO_ERROR);
  e.reset(p->abort_transaction(30000));
  ASSERT_FALSE(e) << e->str();

  e.reset(p->begin_transaction());
  ASSERT_FALSE(e) << e->str();
  for (int i = 0; i < 20; ++i) produce(*p, topic, "committed-" + std::to_string(i), "{\"body\":\"x\"}");
  e.reset(p->commit_transaction(30000));
  ASSERT_FALSE(e) << e->str();

  const auto records = consume_all(topic, 20);
  ASSERT_EQ(records.size(), 20u);
  for (const auto& [key, value] : records) EXPECT_EQ(key.rfind("committed-", 0), 0u) << key;
}

}  // namespace
}  // namespace triage
