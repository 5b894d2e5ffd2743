// Produces and consumes through a real Apache Kafka broker (the kafka_broker
// fixture, ops/kafka.sh) with librdkafka: tickets survive the trip byte for
// byte, malformed records are recognised as such, and transactions work
// (aborted records stay invisible to read_committed consumers), which
// librdkafka's mock cluster cannot show.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "schemas/codec.h"
#include "workers/kafka_conf.h"

namespace triage {
namespace {

using namespace std::chrono_literals;

std::string bootstrap() {
  if (const char* b = std::getenv("TRIAGE_KAFKA_BOOTSTRAP"); b && *b) return b;
  const char* dir = std::getenv("TRIAGE_KAFKA_DIR");
  if (!dir) return {};
  std::ifstream in(std::string(dir) + "/bootstrap");
  std::string address;
  in >> address;
  return address;
}

std::string unique_name(const std::string& prefix) {
  std::random_device rd;
  return prefix + "-" + std::to_string(rd() % 1000000000u);
}

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
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", servers_.c_str(), err, sizeof err),
              RD_KAFKA_CONF_OK);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ASSERT_NE(rk, nullptr) << err;
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
    ASSERT_NE(ev, nullptr) << "CreateTopics timed out";
    const auto* res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(res, &n);
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(rd_kafka_topic_result_error(topics[0]), RD_KAFKA_RESP_ERR_NO_ERROR)
        << rd_kafka_topic_result_error_string(topics[0]);
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
  }

  std::unique_ptr<RdKafka::Producer> producer(const workers::settings_map& extra) {
    auto conf = workers::make_conf(base(), extra);
    EXPECT_TRUE(conf) << conf.error().message;
    std::string err;
    std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf.value().get(), err));
    EXPECT_TRUE(p) << err;
    return p;
  }

  void produce(RdKafka::Producer& p, const std::string& topic, const std::string& key,
               const std::string& value) {
    RdKafka::ErrorCode rc;
    while ((rc = p.produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                           const_cast<char*>(value.data()), value.size(), key.data(), key.size(),
                           0, nullptr)) == RdKafka::ERR__QUEUE_FULL) {
      p.poll(100);
    }
    ASSERT_EQ(rc, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(rc);
  }

  // Reads `topic` from the start with read_committed until `expected` records
  // arrived or 60 s passed; returns value by key.
  std::multimap<std::string, std::string> consume_all(const std::string& topic, size_t expected) {
    auto conf = workers::make_conf(base(), {{"group.id", unique_name("g")},
                                            {"auto.offset.reset", "earliest"},
                                            {"isolation.level", "read_committed"},
                                            {"enable.auto.commit", "false"}});
    EXPECT_TRUE(conf) << conf.error().message;
    std::string err;
    std::unique_ptr<RdKafka::KafkaConsumer> c(
        RdKafka::KafkaConsumer::create(conf.value().get(), err));
    EXPECT_TRUE(c) << err;
    std::multimap<std::string, std::string> out;
    if (!c) return out;
    c->subscribe({topic});
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    // Keep reading a little past `expected`, so duplicates would show.
    auto quiet_until = std::chrono::steady_clock::time_point::max();
    while (std::chrono::steady_clock::now() < std::min(deadline, quiet_until)) {
      std::unique_ptr<RdKafka::Message> m(c->consume(200));
      if (m->err() == RdKafka::ERR_NO_ERROR) {
        out.emplace(m->key() ? *m->key() : "",
                    std::string(static_cast<const char*>(m->payload()), m->len()));
        if (out.size() == expected) quiet_until = std::chrono::steady_clock::now() + 2s;
      } else if (m->err() != RdKafka::ERR__TIMED_OUT && m->err() != RdKafka::ERR__PARTITION_EOF) {
        ADD_FAILURE() << "consume: " << m->errstr();
      }
    }
    c->close();
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
