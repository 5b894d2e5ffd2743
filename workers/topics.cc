#include "workers/topics.h"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <set>
#include <string_view>
#include <thread>

#include "state/changelog.h"
#include "workers/kafka_conf.h"

namespace triage::workers {

std::vector<std::string> topic_names(const topology::config& cfg,
                                     const std::vector<std::string>& categories) {
  const auto& t = cfg.topics;
  std::vector<std::string> names{t.tickets, t.escalations, t.dead_letter, t.corrections};
  std::set<std::string> queues;
  for (const auto& c : categories) {
    auto it = cfg.routing.queues.find(c);
    queues.insert(it == cfg.routing.queues.end() ? c : it->second);
  }
  for (const auto& q : queues) names.push_back(t.routed_prefix + q);
  return names;
}

namespace {

using admin_handle = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;

result<admin_handle> admin_client(const topology::config& cfg) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [key, value] : cfg.kafka.settings) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(errc::bad_setting, "kafka.settings." + key + ": " + err);
    }
  }
  admin_handle rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err), rd_kafka_destroy);
  if (!rk) return make_error(errc::client_failed, std::string("admin client: ") + err);
  return rk;
}

}  // namespace

result<void> create_topics(const topology::config& cfg, const std::vector<std::string>& names,
                           int timeout_ms) {
  auto client = admin_client(cfg);
  if (!client) return client.error();
  auto& rk = client.value();
  char err[512];

  std::vector<rd_kafka_NewTopic_t*> topics;
  for (const auto& name : names) {
    auto* nt = rd_kafka_NewTopic_new(name.c_str(), cfg.topics.partitions,
                                     cfg.topics.replication_factor, err, sizeof err);
    if (!nt) {
      for (auto* t : topics) rd_kafka_NewTopic_destroy(t);
      return make_error(errc::bad_setting, "topic '" + name + "': " + err);
    }
    topics.push_back(nt);
  }
  std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> q(rd_kafka_queue_new(rk.get()),
                                                                         rd_kafka_queue_destroy);
  std::unique_ptr<rd_kafka_AdminOptions_t, decltype(&rd_kafka_AdminOptions_destroy)> options(
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS),
      rd_kafka_AdminOptions_destroy);
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, err, sizeof err);
  rd_kafka_CreateTopics(rk.get(), topics.data(), topics.size(), options.get(), q.get());
  for (auto* t : topics) rd_kafka_NewTopic_destroy(t);

  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> ev(
      rd_kafka_queue_poll(q.get(), timeout_ms + 5000), rd_kafka_event_destroy);
  if (!ev) return make_error(errc::client_failed, "CreateTopics: no answer within " + std::to_string(timeout_ms) + " ms");
  if (rd_kafka_event_error(ev.get())) {
    return make_error(errc::client_failed,
                      std::string("CreateTopics: ") + rd_kafka_event_error_string(ev.get()));
  }
  size_t n = 0;
  const auto** results = rd_kafka_CreateTopics_result_topics(
      rd_kafka_event_CreateTopics_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    const auto code = rd_kafka_topic_result_error(results[i]);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      return make_error(errc::client_failed, std::string("topic '") +
                                                 rd_kafka_topic_result_name(results[i]) +
                                                 "': " + rd_kafka_topic_result_error_string(results[i]));
    }
  }
  return success();
}

namespace {

// Asks `done` every `every` until it answers true or `deadline` passes;
// returns its last answer. KRaft brokers show a new topic or a config change
// a moment after the admin request was answered.
template <class Done>
bool poll_until(std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds every, Done done) {
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

}  // namespace

result<std::string> create_state_changelog(const topology::config& cfg, int timeout_ms, bool compact_existing) {
  if (!cfg.state.enabled) return std::string();
  const auto& topic = cfg.state.changelog_topic;
  // A topic created a moment ago may not be in the metadata yet: ask again.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto n = state::partition_count(cfg.kafka.settings, cfg.topics.tickets, timeout_ms);
  poll_until(deadline, std::chrono::milliseconds(200), [&] {
    if (!n) n = state::partition_count(cfg.kafka.settings, cfg.topics.tickets, timeout_ms);
    return static_cast<bool>(n);
  });
  if (!n) {
    return make_error(errc::client_failed, "state changelog '" + topic + "' is partitioned like the tickets topic '" +
                                               cfg.topics.tickets + "': " + n.error().message);
  }
  // A topic made just now is compacted (and may not be describable yet);
  // one that was there before is kept as it is, so it is checked.
  const bool existed = static_cast<bool>(state::partition_count(cfg.kafka.settings, topic, timeout_ms));
  auto ok = state::ensure_changelog_topic(cfg.kafka.settings, topic, n.value(), cfg.topics.replication_factor,
                                          timeout_ms);
  if (!ok) return make_error(errc::client_failed, ok.error().message);
  if (!existed) {
    // Made just now: return once the brokers' metadata has it (KRaft
    // brokers learn of a new topic a moment after CreateTopics answers).
    poll_until(deadline, std::chrono::milliseconds(100),
               [&] { return static_cast<bool>(state::partition_count(cfg.kafka.settings, topic, timeout_ms)); });
    return topic;
  }
  auto policy = topic_cleanup_policy(cfg, topic, timeout_ms);
  if (!policy) return policy.error();
  if (auto checked = check_changelog_policy(cfg, topic, policy.value()); !checked) {
    if (!compact_existing) return checked.error();
    if (auto fixed = compact_topic(cfg, topic, timeout_ms); !fixed) return fixed.error();
    // The brokers apply a config change a moment after AlterConfigs answers
    // (KRaft metadata log): return once describing the topic shows it.
    std::string reported;
    const bool applied = poll_until(deadline, std::chrono::milliseconds(100), [&] {
      auto now = topic_cleanup_policy(cfg, topic, timeout_ms);
      reported = now ? now.value() : now.error().message;
      return now && now.value() == "compact";
    });
    if (!applied) {
      return make_error(errc::client_failed, "state changelog '" + topic +
                                                 "': cleanup.policy=compact was accepted but the broker still "
                                                 "reports " + reported + " after " + std::to_string(timeout_ms) +
                                                 " ms");
    }
  }
  return topic;
}

result<void> check_changelog_policy(const topology::config& cfg, const std::string& topic,
                                    const std::string& policy) {
  if (policy == "compact") return success();
  std::string servers = "127.0.0.1:9092";
  if (auto it = cfg.kafka.settings.find("bootstrap.servers"); it != cfg.kafka.settings.end()) servers = it->second;
  return make_error(errc::bad_setting,
                    "state changelog topic '" + topic + "' has cleanup.policy=" + policy +
                        ", not compact: old values would be deleted by retention and a restore would lose "
                        "state. Fix it with: kafka-configs.sh --bootstrap-server " + servers +
                        " --alter --entity-type topics --entity-name " + topic +
                        " --add-config cleanup.policy=compact, or run triage topics create --compact-changelog "
                        "(or pick another state.changelog_topic)");
}

namespace {

struct topic_config_entry {
  std::string name, value;
  bool dynamic = false;  // set on the topic (not a broker or default value)
};

// The topic's configuration as the broker reports it (DescribeConfigs).
result<std::vector<topic_config_entry>> describe_topic(rd_kafka_t* rk, const std::string& topic, int timeout_ms) {
  char err[512];
  std::unique_ptr<rd_kafka_ConfigResource_t, decltype(&rd_kafka_ConfigResource_destroy)> res(
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()), rd_kafka_ConfigResource_destroy);
  std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> q(rd_kafka_queue_new(rk),
                                                                         rd_kafka_queue_destroy);
  std::unique_ptr<rd_kafka_AdminOptions_t, decltype(&rd_kafka_AdminOptions_destroy)> options(
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS), rd_kafka_AdminOptions_destroy);
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, err, sizeof err);
  rd_kafka_ConfigResource_t* resources[] = {res.get()};
  rd_kafka_DescribeConfigs(rk, resources, 1, options.get(), q.get());
  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> ev(rd_kafka_queue_poll(q.get(), timeout_ms + 5000),
                                                                          rd_kafka_event_destroy);
  const std::string what = "describing topic '" + topic + "'";
  if (!ev) return make_error(errc::client_failed, what + ": no answer within " + std::to_string(timeout_ms) + " ms");
  if (rd_kafka_event_error(ev.get())) {
    return make_error(errc::client_failed, what + ": " + rd_kafka_event_error_string(ev.get()));
  }
  size_t n = 0;
  const auto** out = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev.get()), &n);
  std::vector<topic_config_entry> entries;
  for (size_t i = 0; i < n; ++i) {
    if (rd_kafka_ConfigResource_error(out[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* e = rd_kafka_ConfigResource_error_string(out[i]);
      return make_error(errc::client_failed, what + ": " + (e ? e : "error"));
    }
    size_t m = 0;
    const auto** configs = rd_kafka_ConfigResource_configs(out[i], &m);
    for (size_t k = 0; k < m; ++k) {
      const char* name = rd_kafka_ConfigEntry_name(configs[k]);
      const char* value = rd_kafka_ConfigEntry_value(configs[k]);
      entries.push_back({name ? name : "", value ? value : "",
                         rd_kafka_ConfigEntry_source(configs[k]) == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG});
    }
  }
  return entries;
}

}  // namespace

result<std::string> topic_config(const topology::config& cfg, const std::string& topic, const std::string& name,
                                 int timeout_ms) {
  auto rk = admin_client(cfg);
  if (!rk) return rk.error();
  auto entries = describe_topic(rk.value().get(), topic, timeout_ms);
  if (!entries) return entries.error();
  for (const auto& e : entries.value()) {
    if (e.name == name) return e.value;
  }
  return make_error(errc::client_failed, "describing topic '" + topic + "': the broker reported no " + name);
}

result<std::string> topic_cleanup_policy(const topology::config& cfg, const std::string& topic, int timeout_ms) {
  return topic_config(cfg, topic, "cleanup.policy", timeout_ms);
}

result<void> compact_topic(const topology::config& cfg, const std::string& topic, int timeout_ms) {
  auto rk = admin_client(cfg);
  if (!rk) return rk.error();
  auto entries = describe_topic(rk.value().get(), topic, timeout_ms);
  if (!entries) return entries.error();
  // AlterConfigs (librdkafka 2.0 has no incremental form) replaces the
  // topic's whole dynamic configuration: send it back with the new policy.
  std::unique_ptr<rd_kafka_ConfigResource_t, decltype(&rd_kafka_ConfigResource_destroy)> res(
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()), rd_kafka_ConfigResource_destroy);
  const std::string what = "setting cleanup.policy=compact on topic '" + topic + "'";
  for (const auto& e : entries.value()) {
    if (!e.dynamic || e.name == "cleanup.policy") continue;
    if (rd_kafka_ConfigResource_set_config(res.get(), e.name.c_str(), e.value.c_str()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return make_error(errc::client_failed, what + ": cannot keep its " + e.name);
    }
  }
  rd_kafka_ConfigResource_set_config(res.get(), "cleanup.policy", "compact");
  char err[512];
  std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> q(rd_kafka_queue_new(rk.value().get()),
                                                                         rd_kafka_queue_destroy);
  std::unique_ptr<rd_kafka_AdminOptions_t, decltype(&rd_kafka_AdminOptions_destroy)> options(
      rd_kafka_AdminOptions_new(rk.value().get(), RD_KAFKA_ADMIN_OP_ALTERCONFIGS), rd_kafka_AdminOptions_destroy);
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, err, sizeof err);
  rd_kafka_ConfigResource_t* resources[] = {res.get()};
  rd_kafka_AlterConfigs(rk.value().get(), resources, 1, options.get(), q.get());
  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> ev(
      rd_kafka_queue_poll(q.get(), timeout_ms + 5000), rd_kafka_event_destroy);
  if (!ev) return make_error(errc::client_failed, what + ": no answer within " + std::to_string(timeout_ms) + " ms");
  if (rd_kafka_event_error(ev.get())) {
    return make_error(errc::client_failed, what + ": " + rd_kafka_event_error_string(ev.get()));
  }
  size_t n = 0;
  const auto** out = rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    if (rd_kafka_ConfigResource_error(out[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* e = rd_kafka_ConfigResource_error_string(out[i]);
      return make_error(errc::client_failed, what + ": " + (e ? e : "error"));
    }
  }
  return success();
}

}  // namespace triage::workers
