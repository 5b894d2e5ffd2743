// Replay from a real Kafka broker (the kafka_broker fixture): a time range
// read through offsetsForTimes gives exactly the records stamped inside it, an
// offset range exactly its offsets, and replay outputs go to prefixed topics,
// never the live ones.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "replay/kafka_range.h"
#include "replay/runner.h"
#include "tests/kafka_test_util.h"
#include "workers/topics.h"

namespace triage {
namespace {

using testing::bootstrap;
using testing::unique_name;

replay::kafka_range by_time(const std::string& topic, std::vector<int32_t> partitions,
                            std::optional<int64_t> from_ms, std::optional<int64_t> to_ms) {
  replay::kafka_range r;
  r.topic = topic;
  r.partitions = std::move(partitions);
  r.from_ms = from_ms;
  r.to_ms = to_ms;
  return r;
}

replay::kafka_range by_offset(const std::string& topic, std::vector<int32_t> partitions, int64_t from,
                              int64_t to) {
  replay::kafka_range r;
  r.topic = topic;
  r.partitions = std::move(partitions);
  r.from_offset = from;
  r.to_offset = to;
  return r;
}

// "p<part>-<i>": the id of ticket i of a partition.
std::string id_of(int part, int i) {
  std::string s = "p";
  s += std::to_string(part);
  s += '-';
  s += std::to_string(i);
  return s;
}

class replay_kafka : public ::testing::Test {
 protected:
  void SetUp() override {
    servers_ = bootstrap();
    ASSERT_FALSE(servers_.empty())
        << "no broker: run under ctest (kafka_broker fixture) or set TRIAGE_KAFKA_BOOTSTRAP";
    cfg_.kafka.settings = {{"bootstrap.servers", servers_}};
    cfg_.topics.partitions = 2;
  }

  // n tickets per partition of `topic` (2 partitions), ticket i of partition p
  // with id "p<p>-<i>" and timestamp base + i seconds.
  void produce_stamped(const std::string& topic, int n, int64_t base) {
    auto ok = workers::create_topics(cfg_, {topic});
    ASSERT_TRUE(ok) << ok.error().message;
    auto p = testing::make_producer({{"bootstrap.servers", servers_}, {"enable.idempotence", "true"}});
    ASSERT_TRUE(p);
    for (int part = 0; part < 2; ++part) {
      for (int i = 0; i < n; ++i) {
        v1::TicketEvent t;
        t.set_id(id_of(part, i));
        t.set_body(std::string("my card ") + std::to_string(i) + " was declined");
        (*t.mutable_attributes())["label_category"] = "cards";
        const std::string v = t.SerializeAsString(), k = t.id();
        RdKafka::ErrorCode rc;
        while ((rc = p->produce(topic, part, RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(v.data()),
                                v.size(), k.data(), k.size(), base + i * 1000, nullptr)) ==
               RdKafka::ERR__QUEUE_FULL) {
          p->poll(100);
        }
        ASSERT_EQ(rc, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(rc);
      }
    }
    ASSERT_EQ(p->flush(30000), RdKafka::ERR_NO_ERROR);
  }

  static std::multiset<std::string> ids(const std::vector<replay::replay_record>& recs) {
    std::multiset<std::string> out;
    for (const auto& r : recs) out.insert(r.record.key);
    return out;
  }

  std::string servers_;
  topology::config cfg_;
};

TEST_F(replay_kafka, time_range_reads_exactly_the_records_stamped_inside_it) {
  const std::string topic = unique_name("replay-in");
  const int64_t base =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() - 600000;
  produce_stamped(topic, 20, base);

  // [base + 5 s, base + 12 s): tickets 5..11 of each partition; 12 is the exclusive end.
  auto r = replay::read_kafka_range(cfg_.kafka.settings,
                                    by_time(topic, {}, base + 5000, base + 12000));
  ASSERT_TRUE(r) << r.error().message;
  std::multiset<std::string> want;
  for (int part = 0; part < 2; ++part) {
    for (int i = 5; i < 12; ++i) want.insert(id_of(part, i));
  }
  EXPECT_EQ(ids(r.value()), want);
  for (const auto& rec : r.value()) {
    EXPECT_GE(rec.record.timestamp_ms, base + 5000);
    EXPECT_LT(rec.record.timestamp_ms, base + 12000);
    EXPECT_EQ(rec.truth.category, "cards");  // label from the ticket's attributes
  }
  // Partition by partition, in offset order.
  ASSERT_EQ(r.value().size(), 14u);
  EXPECT_EQ(r.value().front().record.partition, 0);
  EXPECT_EQ(r.value().front().record.offset, 5);
  EXPECT_EQ(r.value().back().record.partition, 1);
  EXPECT_EQ(r.value().back().record.offset, 11);

  // One partition, from a time to the end; and a range before any record.
  auto tail = replay::read_kafka_range(cfg_.kafka.settings,
                                       by_time(topic, {1}, base + 17500, std::nullopt));
  ASSERT_TRUE(tail) << tail.error().message;
  EXPECT_EQ(ids(tail.value()), (std::multiset<std::string>{"p1-18", "p1-19"}));
  auto none = replay::read_kafka_range(cfg_.kafka.settings,
                                       by_time(topic, {}, base - 10000, base - 5000));
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none.value().empty());

  // By offset: [3, 6) of partition 0.
  auto offs = replay::read_kafka_range(cfg_.kafka.settings,
                                       by_offset(topic, {0}, 3, 6));
  ASSERT_TRUE(offs) << offs.error().message;
  EXPECT_EQ(ids(offs.value()), (std::multiset<std::string>{"p0-3", "p0-4", "p0-5"}));
}

TEST_F(replay_kafka, outputs_go_under_the_prefix_and_never_to_live_topics) {
  const std::string topic = unique_name("replay-src");
  const int64_t base =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() - 600000;
  produce_stamped(topic, 3, base);
  auto recs = replay::read_kafka_range(cfg_.kafka.settings, by_time(topic, {}, std::nullopt, std::nullopt));
  ASSERT_TRUE(recs) << recs.error().message;
  ASSERT_EQ(recs.value().size(), 6u);

  workers::null_backend model({"cards"});
  workers::processor proc(cfg_, model);
  const auto run = replay::run(recs.value(), proc);
  const std::string prefix = unique_name("replay") + ".";
  auto ok = workers::create_topics(cfg_, {prefix + "tickets.routed.cards"});
  ASSERT_TRUE(ok) << ok.error().message;

  EXPECT_EQ(replay::kafka_sink::create(cfg_, {.prefix = "", .allow_live_topics = false}).error().code, replay::errc::live_topic);
  auto sink = replay::kafka_sink::create(cfg_, {.prefix = prefix, .allow_live_topics = false});
  ASSERT_TRUE(sink) << sink.error().message;
  auto n = sink.value()->write(run.outputs);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n.value(), 6u);
  const auto got = testing::consume_all(servers_, {prefix + "tickets.routed.cards"}, 6);
  EXPECT_EQ(got.size(), 6u);
}

TEST_F(replay_kafka, cli_replays_a_time_range_without_committing_offsets) {
  const std::string topic = unique_name("replay-cli");
  const int64_t base =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() - 600000;
  produce_stamped(topic, 10, base);
  const std::string prefix = unique_name("replaycli") + ".";
  // The null backend spreads tickets over the banking categories; disputes escalate.
  std::vector<std::string> topics;
  for (const auto& c : {"cards", "payments", "top_up", "cash", "billing", "account", "security"}) {
    topics.push_back(prefix + "tickets.routed." + c);
  }
  topics.push_back(prefix + "tickets.escalations");
  auto ok = workers::create_topics(cfg_, topics);
  ASSERT_TRUE(ok) << ok.error().message;
  const std::string report = ::testing::TempDir() + "replay_kafka_cli_" + std::to_string(::getpid()) + ".json";
  std::string cmd = std::string(TRIAGE_BINARY) + " replay --topic " + topic;
  cmd.append(" --from-time ").append(std::to_string(base + 2000));
  cmd.append(" --to-time ").append(std::to_string(base + 7000));
  cmd.append(" --set bootstrap.servers=").append(servers_);
  cmd += " --config " TRIAGE_SOURCE_DIR "/topology/default.yaml";
  cmd += " --backend null --taxonomy " TRIAGE_SOURCE_DIR "/data/banking77/taxonomy.csv --no-progress";
  cmd.append(" --output-kafka --output-prefix ").append(prefix).append(" --report ").append(report);
  cmd += " > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(report);
  std::stringstream ss;
  ss << in.rdbuf();
  const auto j = nlohmann::json::parse(ss.str());
  EXPECT_EQ(j.at("evaluation").at("records"), 10);  // tickets 2..6 of both partitions
  EXPECT_EQ(j.at("evaluation").at("labelled"), 10);
  std::remove(report.c_str());
  // The outputs went to the prefixed topics.
  const size_t outputs = testing::consume_all(servers_, topics, 10).size();
  EXPECT_EQ(outputs, 10u);

  // The live consumer group (worker.group_id in default.yaml: "triage") has no
  // offsets committed on the replayed topic.
  auto conf = workers::make_conf(cfg_.kafka.settings, {{"group.id", "triage"}});
  ASSERT_TRUE(conf);
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.value().get(), err));
  ASSERT_TRUE(c) << err;
  std::vector<RdKafka::TopicPartition*> tps{RdKafka::TopicPartition::create(topic, 0),
                                            RdKafka::TopicPartition::create(topic, 1)};
  ASSERT_EQ(c->committed(tps, 10000), RdKafka::ERR_NO_ERROR);
  for (auto* tp : tps) EXPECT_EQ(tp->offset(), RdKafka::Topic::OFFSET_INVALID) << tp->partition();
  RdKafka::TopicPartition::destroy(tps);
  c->close();
}

}  // namespace
}  // namespace triage
