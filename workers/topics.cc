#include "workers/topics.h"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <set>
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

result<void> create_topics(const topology::config& cfg, const std::vector<std::string>& names,
                           int timeout_ms) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [key, value] : cfg.kafka.settings) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(errc::bad_setting, "kafka.settings." + key + ": " + err);
    }
  }
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> rk(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err), rd_kafka_destroy);
  if (!rk) return make_error(errc::client_failed, std::string("admin client: ") + err);

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

result<std::string> create_state_changelog(const topology::config& cfg, int timeout_ms) {
  if (!cfg.state.enabled) return std::string();
  const auto& topic = cfg.state.changelog_topic;
  // A topic created a moment ago may not be in the metadata yet: ask again.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto n = state::partition_count(cfg.kafka.settings, cfg.topics.tickets, timeout_ms);
  while (!n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    n = state::partition_count(cfg.kafka.settings, cfg.topics.tickets, timeout_ms);
  }
  if (!n) {
    return make_error(errc::client_failed, "state changelog '" + topic + "' is partitioned like the tickets topic '" +
                                               cfg.topics.tickets + "': " + n.error().message);
  }
  auto ok = state::ensure_changelog_topic(cfg.kafka.settings, topic, n.value(), cfg.topics.replication_factor,
                                          timeout_ms);
  if (!ok) return make_error(errc::client_failed, ok.error().message);
  return topic;
}

}  // namespace triage::workers
