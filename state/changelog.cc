#include "state/changelog.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <random>
#include <set>

#include "state/updater.h"

namespace triage::state {
namespace {

using clock = std::chrono::steady_clock;

result<std::unique_ptr<RdKafka::Conf>> make_conf(const kafka_settings& settings,
                                                 const kafka_settings& overrides) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  for (const auto* m : {&settings, &overrides}) {
    for (const auto& [k, v] : *m) {
      if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) {
        return make_error(errc::kafka, "kafka setting " + k + ": " + err);
      }
    }
  }
  return conf;
}

std::string random_suffix() { return std::to_string(std::random_device{}() % 1000000000u); }

}  // namespace

result<int> partition_count(const kafka_settings& settings, const std::string& topic, int timeout_ms) {
  // A metadata request from a producer would have the broker auto-create the
  // topic (with its default partition count): ask without that.
  auto conf = make_conf(settings, {{"allow.auto.create.topics", "false"}});
  if (!conf) return conf.error();
  std::string err;
  std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf.value().get(), err));
  if (!p) return make_error(errc::kafka, "metadata client: " + err);
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(p.get(), topic, nullptr, err));
  if (!t) return make_error(errc::kafka, "topic '" + topic + "': " + err);
  RdKafka::Metadata* raw = nullptr;
  const auto rc = p->metadata(false, t.get(), &raw, timeout_ms);
  std::unique_ptr<RdKafka::Metadata> md(raw);
  if (rc != RdKafka::ERR_NO_ERROR) {
    return make_error(errc::kafka, "metadata of '" + topic + "': " + RdKafka::err2str(rc));
  }
  for (const auto* tm : *md->topics()) {
    if (tm->topic() != topic) continue;
    if (tm->err() != RdKafka::ERR_NO_ERROR) {
      return make_error(errc::kafka, "topic '" + topic + "': " + RdKafka::err2str(tm->err()));
    }
    return static_cast<int>(tm->partitions()->size());
  }
  return make_error(errc::kafka, "topic '" + topic + "': not in the metadata");
}

result<void> ensure_changelog_topic(const kafka_settings& settings, const std::string& topic,
                                    int partitions, int replication_factor, int timeout_ms) {
  if (auto n = partition_count(settings, topic, timeout_ms); n) {
    if (n.value() < partitions) {
      return make_error(errc::kafka, "changelog topic '" + topic + "' has " + std::to_string(n.value()) +
                                         " partitions, the input has " + std::to_string(partitions) +
                                         ": add partitions to it (kafka-topics --alter)");
    }
    return success();
  }
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(errc::kafka, "kafka setting " + key + ": " + err);
    }
  }
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> rk(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err), rd_kafka_destroy);
  if (!rk) return make_error(errc::kafka, std::string("admin client: ") + err);
  std::unique_ptr<rd_kafka_NewTopic_t, decltype(&rd_kafka_NewTopic_destroy)> nt(
      rd_kafka_NewTopic_new(topic.c_str(), partitions, replication_factor, err, sizeof err),
      rd_kafka_NewTopic_destroy);
  if (!nt) return make_error(errc::kafka, "changelog topic '" + topic + "': " + err);
  rd_kafka_NewTopic_set_config(nt.get(), "cleanup.policy", "compact");
  std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> q(rd_kafka_queue_new(rk.get()),
                                                                         rd_kafka_queue_destroy);
  rd_kafka_NewTopic_t* topics[] = {nt.get()};
  rd_kafka_CreateTopics(rk.get(), topics, 1, nullptr, q.get());
  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> ev(
      rd_kafka_queue_poll(q.get(), timeout_ms), rd_kafka_event_destroy);
  if (!ev) return make_error(errc::kafka, "creating changelog topic '" + topic + "': no answer");
  if (rd_kafka_event_error(ev.get())) {
    return make_error(errc::kafka, "creating changelog topic '" + topic + "': " +
                                       rd_kafka_event_error_string(ev.get()));
  }
  size_t n = 0;
  const auto** res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    const auto code = rd_kafka_topic_result_error(res[i]);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      return make_error(errc::kafka, "creating changelog topic '" + topic +
                                         "': " + rd_kafka_topic_result_error_string(res[i]));
    }
  }
  return success();
}

result<restore_result> restore(store& s, const kafka_settings& settings, const std::string& topic,
                               const std::vector<int32_t>& partitions, int timeout_ms) {
  restore_result out;
  for (int32_t p : partitions) {
    if (auto ok = s.wipe_partition(p); !ok) return ok.error();
  }
  if (partitions.empty()) return out;
  auto conf = make_conf(settings, {{"group.id", "triage-restore-" + random_suffix()},
                                   {"enable.auto.commit", "false"},
                                   {"isolation.level", "read_committed"},
                                   {"enable.partition.eof", "true"},
                                   {"auto.offset.reset", "earliest"}});
  if (!conf) return conf.error();
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.value().get(), err));
  if (!c) return make_error(errc::kafka, "restore consumer: " + err);
  const auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
  // Each partition is read until its end-of-partition event: with
  // read_committed that is the last stable offset, past which only
  // transactions still open lie. The caller asked for the group's committed
  // offsets first, which waits for the previous owner's transaction to end,
  // so nothing of this partition's state is still open then.
  std::set<int32_t> pending(partitions.begin(), partitions.end());
  std::vector<RdKafka::TopicPartition*> assign;
  for (int32_t p : partitions) {
    assign.push_back(RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
  }
  c->assign(assign);
  RdKafka::TopicPartition::destroy(assign);

  write_set batch;
  auto flush = [&]() -> result<void> {
    if (batch.empty()) return success();
    auto ok = s.write(batch);
    batch.ops.clear();
    return ok;
  };
  auto fail = [&](error e) -> result<restore_result> {
    c->close();
    return e;
  };
  while (!pending.empty()) {
    if (clock::now() > deadline) {
      std::string left;
      for (int32_t p : pending) {
        if (!left.empty()) left += ',';
        left += std::to_string(p);
      }
      return fail(make_error(errc::restore_failed,
                             "changelog '" + topic + "': partitions " + left + " not read to their end within " +
                                 std::to_string(timeout_ms) + " ms (an open transaction holds the end back?)"));
    }
    std::unique_ptr<RdKafka::Message> m(c->consume(200));
    switch (m->err()) {
      case RdKafka::ERR_NO_ERROR: {
        const std::string key = m->key() ? *m->key() : "";
        auto fk = parse_changelog_key(key);
        if (!fk) {
          return fail(make_error(errc::restore_failed, "changelog '" + topic + "' partition " +
                                                           std::to_string(m->partition()) + " offset " +
                                                           std::to_string(m->offset()) + ": " +
                                                           fk.error().message));
        }
        if (m->payload() == nullptr) {
          batch.erase(fk.value().first, std::move(fk.value().second));
        } else {
          batch.put(fk.value().first, std::move(fk.value().second),
                    std::string(static_cast<const char*>(m->payload()), m->len()));
        }
        ++out.records;
        if (batch.ops.size() >= 1000) {
          if (auto ok = flush(); !ok) return fail(ok.error());
        }
        break;
      }
      case RdKafka::ERR__PARTITION_EOF:
        out.end_offsets[m->partition()] = m->offset();
        pending.erase(m->partition());
        break;
      case RdKafka::ERR__TIMED_OUT:
      // Metadata of a topic created moments ago may lag; keep polling.
      case RdKafka::ERR__UNKNOWN_PARTITION:
      case RdKafka::ERR_UNKNOWN_TOPIC_OR_PART:
      case RdKafka::ERR_NOT_LEADER_FOR_PARTITION:
      case RdKafka::ERR_LEADER_NOT_AVAILABLE:
        break;
      default:
        return fail(make_error(errc::kafka, "changelog '" + topic + "': " + m->errstr()));
    }
  }
  if (auto ok = flush(); !ok) return fail(ok.error());
  c->close();
  return out;
}

}  // namespace triage::state
