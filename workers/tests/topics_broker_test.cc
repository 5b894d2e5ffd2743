// `triage topics create` on the real broker (kafka_broker fixture): with
// state enabled it also creates the state changelog, compacted and with the
// tickets topic's partition count.
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "state/changelog.h"
#include "tests/kafka_test_util.h"
#include "workers/run_cmds.h"
#include "workers/topics.h"

namespace triage::workers {
namespace {

namespace fs = std::filesystem;

// The topic's cleanup.policy as the broker reports it ("" if not found).
std::string cleanup_policy(const std::string& servers, const std::string& topic) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", servers.c_str(), err, sizeof err);
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err),
                                                              rd_kafka_destroy);
  if (!rk) return "";
  std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> q(rd_kafka_queue_new(rk.get()),
                                                                         rd_kafka_queue_destroy);
  rd_kafka_ConfigResource_t* res[] = {rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str())};
  rd_kafka_DescribeConfigs(rk.get(), res, 1, nullptr, q.get());
  rd_kafka_ConfigResource_destroy(res[0]);
  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> ev(rd_kafka_queue_poll(q.get(), 30000),
                                                                          rd_kafka_event_destroy);
  if (!ev || rd_kafka_event_error(ev.get())) return "";
  size_t n = 0;
  const auto** out = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    size_t m = 0;
    const auto** entries = rd_kafka_ConfigResource_configs(out[i], &m);
    for (size_t k = 0; k < m; ++k) {
      if (std::string(rd_kafka_ConfigEntry_name(entries[k])) == "cleanup.policy") {
        const char* v = rd_kafka_ConfigEntry_value(entries[k]);
        return v ? v : "";
      }
    }
  }
  return "";
}

class topics_create : public ::testing::Test {
 protected:
  void SetUp() override {
    servers_ = testing::bootstrap();
    ASSERT_FALSE(servers_.empty())
        << "no broker: run under ctest (kafka_broker fixture) or set TRIAGE_KAFKA_BOOTSTRAP";
    prefix_ = testing::unique_name("tc");
    dir_ = fs::temp_directory_path() / prefix_;
    fs::create_directories(dir_);
    std::ofstream(dir_ / "taxonomy.csv") << "intent,category,urgency\nlost_card,cards,2\nrefund,payments,1\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_config(bool state_enabled, int partitions) {
    const auto path = dir_ / (std::string("topology-") + (state_enabled ? "on" : "off") + ".yaml");
    std::ofstream(path) << "kafka:\n  settings:\n    bootstrap.servers: " << servers_ << "\n"
                        << "topics:\n  tickets: " << prefix_ << ".tickets\n  escalations: " << prefix_
                        << ".escalations\n  dead_letter: " << prefix_ << ".dlq\n  routed_prefix: " << prefix_
                        << ".routed.\n  corrections: " << prefix_ << ".corrections\n  partitions: " << partitions
                        << "\n  replication_factor: 1\n"
                        << "state:\n  enabled: " << (state_enabled ? "true" : "false") << "\n  changelog_topic: "
                        << prefix_ << ".changelog\n";
    return path.string();
  }

  int create(const std::string& config) {
    topics_args a;
    a.config = config;
    a.taxonomy = (dir_ / "taxonomy.csv").string();
    return run_topics_create(a);
  }

  std::string servers_, prefix_;
  fs::path dir_;
};

TEST_F(topics_create, state_off_creates_no_changelog) {
  ASSERT_EQ(create(write_config(false, 2)), 0);
  EXPECT_FALSE(state::partition_count({{"bootstrap.servers", servers_}}, prefix_ + ".changelog"));
}

TEST_F(topics_create, the_changelog_is_compacted_and_partitioned_like_the_tickets_topic) {
  const state::kafka_settings settings{{"bootstrap.servers", servers_}};
  // The tickets topic already exists with 5 partitions; the config says 3.
  topology::config pre;
  pre.kafka.settings = settings;
  pre.topics.partitions = 5;
  ASSERT_TRUE(create_topics(pre, {prefix_ + ".tickets"}));
  const auto config = write_config(true, 3);
  ASSERT_EQ(create(config), 0);
  auto n = state::partition_count(settings, prefix_ + ".changelog");
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n.value(), 5);
  EXPECT_EQ(cleanup_policy(servers_, prefix_ + ".changelog"), "compact");
  EXPECT_EQ(cleanup_policy(servers_, prefix_ + ".tickets"), "delete");
  // Again: everything exists, nothing changes.
  EXPECT_EQ(create(config), 0);
  EXPECT_EQ(state::partition_count(settings, prefix_ + ".changelog").value(), 5);
}

TEST_F(topics_create, a_changelog_with_fewer_partitions_than_the_tickets_is_refused) {
  const state::kafka_settings settings{{"bootstrap.servers", servers_}};
  ASSERT_TRUE(state::ensure_changelog_topic(settings, prefix_ + ".changelog", 2, 1));
  topology::config cfg;
  cfg.kafka.settings = settings;
  cfg.topics.tickets = prefix_ + ".tickets";
  cfg.topics.partitions = 4;
  cfg.state.enabled = true;
  cfg.state.changelog_topic = prefix_ + ".changelog";
  ASSERT_TRUE(create_topics(cfg, {cfg.topics.tickets}));
  auto r = create_state_changelog(cfg);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(prefix_ + ".changelog' has 2 partitions"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace triage::workers
