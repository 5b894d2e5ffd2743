// `triage topics create` against an existing state changelog that is not
// compacted (made by hand, or by a broker auto-creating it): refused, naming
// the topic and its cleanup.policy, and nothing on the broker is changed;
// with --compact-changelog, compacted, its other settings kept.
#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "state/changelog.h"
#include "tests/kafka_test_util.h"
#include "workers/topics.h"

namespace triage::workers {
namespace {

// A topic with 2 partitions, the default cleanup.policy (delete) and its own retention.ms.
void make_topic_with_retention(const std::string& servers, const std::string& topic, const std::string& retention_ms) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", servers.c_str(), err, sizeof err);
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err),
                                                              rd_kafka_destroy);
  ASSERT_TRUE(rk) << err;
  std::unique_ptr<rd_kafka_NewTopic_t, decltype(&rd_kafka_NewTopic_destroy)> nt(
      rd_kafka_NewTopic_new(topic.c_str(), 2, 1, err, sizeof err), rd_kafka_NewTopic_destroy);
  ASSERT_TRUE(nt) << err;
  rd_kafka_NewTopic_set_config(nt.get(), "retention.ms", retention_ms.c_str());
  std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> q(rd_kafka_queue_new(rk.get()),
                                                                         rd_kafka_queue_destroy);
  rd_kafka_NewTopic_t* topics[] = {nt.get()};
  rd_kafka_CreateTopics(rk.get(), topics, 1, nullptr, q.get());
  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> ev(rd_kafka_queue_poll(q.get(), 30000),
                                                                          rd_kafka_event_destroy);
  ASSERT_TRUE(ev);
  size_t n = 0;
  const auto** res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  ASSERT_EQ(n, 1u);
  ASSERT_EQ(rd_kafka_topic_result_error(res[0]), RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_topic_result_error_string(res[0]);
}

TEST(changelog_policy_broker, an_existing_changelog_that_is_not_compacted_is_refused) {
  const std::string servers = testing::bootstrap();
  ASSERT_FALSE(servers.empty()) << "no broker: run under ctest (kafka_broker fixture) or set TRIAGE_KAFKA_BOOTSTRAP";
  const std::string prefix = testing::unique_name("cp");
  topology::config cfg;
  cfg.kafka.settings = {{"bootstrap.servers", servers}};
  cfg.topics.tickets = prefix + ".tickets";
  cfg.topics.partitions = 2;
  cfg.state.enabled = true;
  cfg.state.changelog_topic = prefix + ".changelog";
  // The changelog made like any other topic: cleanup.policy=delete.
  ASSERT_TRUE(create_topics(cfg, {cfg.topics.tickets, cfg.state.changelog_topic}));
  auto before = topic_cleanup_policy(cfg, cfg.state.changelog_topic);
  ASSERT_TRUE(before) << before.error().message;
  EXPECT_EQ(before.value(), "delete");

  auto r = create_state_changelog(cfg);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'" + cfg.state.changelog_topic + "' has cleanup.policy=delete"), std::string::npos)
      << r.error().message;
  auto after = topic_cleanup_policy(cfg, cfg.state.changelog_topic);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after.value(), "delete");

  // With --compact-changelog: compacted, the topic's other settings kept.
  {
    auto conf = cfg;
    conf.state.changelog_topic = prefix + ".changelog3";
    make_topic_with_retention(servers, conf.state.changelog_topic, "7200000");
    ASSERT_EQ(topic_cleanup_policy(conf, conf.state.changelog_topic).value(), "delete");
    auto fixed = create_state_changelog(conf, 30000, true);
    ASSERT_TRUE(fixed) << fixed.error().message;
    EXPECT_EQ(topic_cleanup_policy(conf, conf.state.changelog_topic).value(), "compact");
    EXPECT_EQ(topic_config(conf, conf.state.changelog_topic, "retention.ms").value(), "7200000");
  }
  auto fixed = create_state_changelog(cfg, 30000, true);
  ASSERT_TRUE(fixed) << fixed.error().message;
  EXPECT_EQ(topic_cleanup_policy(cfg, cfg.state.changelog_topic).value(), "compact");

  // A compacted one (what create_state_changelog makes) passes.
  cfg.state.changelog_topic = prefix + ".changelog2";
  auto ok = create_state_changelog(cfg);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(topic_cleanup_policy(cfg, cfg.state.changelog_topic).value(), "compact");
}

}  // namespace
}  // namespace triage::workers
