#include "topology/config.h"

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace triage::topology {
namespace {

TEST(parse_config, empty_file_gives_defaults) {
  auto r = parse_config("", "empty.yaml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().topics.tickets, "tickets");
  EXPECT_EQ(r.value().topics.partitions, 6);
  EXPECT_EQ(r.value().kafka.settings.at("bootstrap.servers"), "127.0.0.1:9092");
}

TEST(parse_config, shipped_default_loads) {
  const char* src = std::getenv("TRIAGE_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  auto r = load_config(std::string(src) + "/topology/default.yaml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().topics.dead_letter, "tickets.dlq");
}

TEST(load_config, set_settings_override_and_a_malformed_one_hides_its_value) {
  const char* src = std::getenv("TRIAGE_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  const std::string path = std::string(src) + "/topology/default.yaml";
  auto r = load_config(path, {"bootstrap.servers=10.0.0.1:9093", "sasl.username=u=v"});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().kafka.settings.at("bootstrap.servers"), "10.0.0.1:9093");
  EXPECT_EQ(r.value().kafka.settings.at("sasl.username"), "u=v");  // split at the first '='
  for (const std::string bad : {"sasl.password:hunter2", "sasl.password hunter2"}) {
    auto e = load_config(path, {bad});
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, errc::bad_value);
    EXPECT_NE(e.error().message.find("--set 'sasl.password...'"), std::string::npos) << e.error().message;
    EXPECT_EQ(e.error().message.find("hunter2"), std::string::npos) << e.error().message;
  }
  EXPECT_FALSE(load_config(path, {"=value"}));
}

TEST(parse_config, kafka_settings_pass_through_untouched) {
  auto r = parse_config(R"(
kafka:
  settings:
    bootstrap.servers: broker-1:9093
    security.protocol: SASL_SSL
    sasl.mechanism: PLAIN
    linger.ms: 5
)", "c.yaml");
  ASSERT_TRUE(r) << r.error().message;
  const auto& s = r.value().kafka.settings;
  EXPECT_EQ(s.at("security.protocol"), "SASL_SSL");
  EXPECT_EQ(s.at("linger.ms"), "5");
  EXPECT_EQ(s.at("bootstrap.servers"), "broker-1:9093");
}

TEST(parse_config, unknown_key_names_file_line_and_key) {
  auto r = parse_config("topics:\n  tickets: t\n  partitons: 3\n", "typo.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::unknown_key);
  EXPECT_NE(r.error().message.find("typo.yaml:3: topics.partitons: unknown key"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("partitions"), std::string::npos);  // lists the known keys

  r = parse_config("tropics: {}\n", "top.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::unknown_key);
  EXPECT_NE(r.error().message.find("top.yaml:1: tropics"), std::string::npos) << r.error().message;
}

TEST(parse_config, out_of_bounds_and_wrong_types) {
  auto r = parse_config("topics:\n  partitions: 0\n", "b.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_value);
  EXPECT_NE(r.error().message.find("b.yaml:2: topics.partitions: must be 1..10000, got 0"),
            std::string::npos) << r.error().message;

  r = parse_config("topics:\n  partitions: many\n", "b.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("expected an integer"), std::string::npos);

  r = parse_config("topics:\n  tickets: [a, b]\n", "b.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("topics.tickets: expected a non-empty string"), std::string::npos)
      << r.error().message;

  r = parse_config("topics: 3\n", "b.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_value);
}

TEST(parse_config, cost_section) {
  auto r = parse_config("cost:\n  frontier_per_call: 0.03\n  slm_per_ticket: 0.001\n  weekly_tickets: 5000\n", "c.yaml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_DOUBLE_EQ(r.value().cost.frontier_per_call, 0.03);
  EXPECT_DOUBLE_EQ(r.value().cost.slm_per_ticket, 0.001);
  EXPECT_DOUBLE_EQ(r.value().cost.weekly_tickets, 5000);
  // Omitted keys keep their defaults.
  r = parse_config("cost:\n  weekly_tickets: 1\n", "c.yaml");
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(r.value().cost.frontier_per_call, 0.01);

  r = parse_config("cost:\n  slm_per_ticket: -1\n", "c.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("c.yaml:2: cost.slm_per_ticket"), std::string::npos) << r.error().message;
  r = parse_config("cost:\n  per_call: 1\n", "c.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cost.per_call"), std::string::npos) << r.error().message;
}

TEST(parse_config, routing_and_worker_sections) {
  auto r = parse_config(R"(
routing:
  min_confidence: 0.9
  always_escalate: [disputes, security]
  queues: {cards: card-team}
  escalate_truncated: true
worker:
  delivery: at_least_once
  batch_max_tickets: 8
)", "rw.yaml");
  ASSERT_TRUE(r) << r.error().message;
  const auto& c = r.value();
  EXPECT_DOUBLE_EQ(c.routing.min_confidence, 0.9);
  EXPECT_EQ(c.routing.always_escalate, (std::vector<std::string>{"disputes", "security"}));
  EXPECT_EQ(c.routing.queues.at("cards"), "card-team");
  EXPECT_TRUE(c.routing.escalate_truncated);
  EXPECT_EQ(c.worker.delivery, delivery_mode::at_least_once);
  EXPECT_EQ(c.worker.batch_max_tickets, 8);
  EXPECT_EQ(c.worker.group_id, "triage");  // default kept

  auto a = parse_config("routing:\n  min_confidence: adapter\n", "a.yaml");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_LT(a.value().routing.min_confidence, 0);

  auto bad = parse_config("routing:\n  min_confidence: 1.5\n", "b.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("b.yaml:2: routing.min_confidence: must be in [0"),
            std::string::npos) << bad.error().message;
  bad = parse_config("worker:\n  delivery: at_most_once\n", "d.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("worker.delivery: expected exactly_once or at_least_once"),
            std::string::npos) << bad.error().message;
  bad = parse_config("routing:\n  always_escalate: disputes\n", "l.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("expected a list"), std::string::npos);
}

TEST(parse_config, bad_yaml_and_missing_file) {
  auto r = parse_config("topics: {tickets: [\n", "broken.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_yaml);
  EXPECT_NE(r.error().message.find("broken.yaml:"), std::string::npos);

  r = load_config("/nonexistent/triage.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::unreadable);
  EXPECT_NE(r.error().message.find("/nonexistent/triage.yaml"), std::string::npos);
}

}  // namespace
}  // namespace triage::topology
