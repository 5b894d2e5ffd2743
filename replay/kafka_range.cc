#include "replay/kafka_range.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <random>

#include <librdkafka/rdkafkacpp.h>

#include "schemas/codec.h"
#include "workers/kafka_conf.h"

namespace triage::replay {
namespace {

using clock = std::chrono::steady_clock;

std::string throwaway_group() {
  std::mt19937_64 rng{std::random_device{}()};
  return "triage-replay-" + std::to_string(rng() % 1000000000000ull);
}

error kafka_error(const std::string& what, RdKafka::ErrorCode rc) {
  return make_error(errc::kafka, what + ": " + RdKafka::err2str(rc));
}

int remaining_ms(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  return static_cast<int>(std::max<int64_t>(left, 1));
}

// offsetsForTimes for one partition: the first offset with timestamp >= ts,
// or `fallback` (the high watermark) when there is none.
result<int64_t> offset_for_time(RdKafka::KafkaConsumer& c, const std::string& topic, int32_t p,
                                int64_t ts, int64_t fallback, int timeout_ms) {
  std::vector<RdKafka::TopicPartition*> tps{RdKafka::TopicPartition::create(topic, p, ts)};
  const auto rc = c.offsetsForTimes(tps, timeout_ms);
  int64_t off = tps[0]->offset();
  const auto perr = tps[0]->err();
  RdKafka::TopicPartition::destroy(tps);
  if (rc != RdKafka::ERR_NO_ERROR) return kafka_error(topic + "/" + std::to_string(p) + ": offsetsForTimes", rc);
  if (perr != RdKafka::ERR_NO_ERROR) return kafka_error(topic + "/" + std::to_string(p) + ": offsetsForTimes", perr);
  return off < 0 ? fallback : off;
}

}  // namespace

result<int64_t> parse_time_ms(std::string_view text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos && text.size() <= 18) {
    return std::stoll(std::string(text));
  }
  std::tm tm{};
  int frac_ms = 0;
  const std::string s(text);
  char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) {
    return make_error(errc::bad_option, "time '" + s + "': expected ms since the epoch or RFC 3339 UTC "
                                        "(2026-11-24T10:00:00Z)");
  }
  if (*end == '.') {
    ++end;
    int digits = 0;
    while (*end >= '0' && *end <= '9') {
      if (digits < 3) frac_ms = frac_ms * 10 + (*end - '0');
      ++digits;
      ++end;
    }
    for (; digits < 3; ++digits) frac_ms *= 10;
  }
  if (std::string_view(end) != "Z" && std::string_view(end) != "+00:00") {
    return make_error(errc::bad_option, "time '" + s + "': only UTC times (ending in Z) are accepted");
  }
  return static_cast<int64_t>(timegm(&tm)) * 1000 + frac_ms;
}

result<std::vector<replay_record>> read_kafka_range(const std::map<std::string, std::string>& settings,
                                                    const kafka_range& range,
                                                    const classifier::taxonomy* taxonomy) {
  if (range.topic.empty()) return make_error(errc::bad_option, "kafka range: no topic given");
  const auto deadline = clock::now() + std::chrono::milliseconds(range.timeout_ms);
  // A throwaway group id (the C++ consumer wants one), no auto commit, no
  // offset store, and no commit call anywhere: assign() reads without joining
  // or touching any group.
  auto conf = workers::make_conf(settings, {{"group.id", throwaway_group()},
                                            {"enable.auto.commit", "false"},
                                            {"enable.auto.offset.store", "false"},
                                            {"enable.partition.eof", "true"},
                                            {"auto.offset.reset", "error"}});
  if (!conf) return make_error(errc::bad_option, conf.error().message);
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.value().get(), err));
  if (!c) return make_error(errc::kafka, "replay consumer: " + err);

  std::vector<int32_t> parts = range.partitions;
  if (parts.empty()) {
    std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(c.get(), range.topic, nullptr, err));
    if (!t) return make_error(errc::kafka, range.topic + ": " + err);
    RdKafka::Metadata* md = nullptr;
    auto rc = c->metadata(false, t.get(), &md, remaining_ms(deadline));
    std::unique_ptr<RdKafka::Metadata> owned(md);
    if (rc != RdKafka::ERR_NO_ERROR) return kafka_error(range.topic + ": metadata", rc);
    for (const auto* tm : *md->topics()) {
      if (tm->topic() != range.topic) continue;
      if (tm->err() != RdKafka::ERR_NO_ERROR) return kafka_error(range.topic + ": metadata", tm->err());
      for (const auto* pm : *tm->partitions()) parts.push_back(pm->id());
    }
    std::sort(parts.begin(), parts.end());
    if (parts.empty()) return make_error(errc::kafka, range.topic + ": topic has no partitions");
  }

  struct part_state {
    int64_t end = 0;
    bool done = false;
  };
  std::map<int32_t, part_state> state;
  std::vector<RdKafka::TopicPartition*> assignment;
  for (int32_t p : parts) {
    int64_t lo = 0, hi = 0;
    auto rc = c->query_watermark_offsets(range.topic, p, &lo, &hi, remaining_ms(deadline));
    if (rc != RdKafka::ERR_NO_ERROR) {
      RdKafka::TopicPartition::destroy(assignment);
      return kafka_error(range.topic + "/" + std::to_string(p) + ": watermarks", rc);
    }
    int64_t start = std::clamp<int64_t>(range.from_offset.value_or(lo), lo, hi);
    int64_t end = std::clamp<int64_t>(range.to_offset.value_or(hi), lo, hi);
    if (range.from_ms) {
      auto o = offset_for_time(*c, range.topic, p, *range.from_ms, hi, remaining_ms(deadline));
      if (!o) {
        RdKafka::TopicPartition::destroy(assignment);
        return o.error();
      }
      start = o.value();
    }
    if (range.to_ms) {
      auto o = offset_for_time(*c, range.topic, p, *range.to_ms, hi, remaining_ms(deadline));
      if (!o) {
        RdKafka::TopicPartition::destroy(assignment);
        return o.error();
      }
      end = o.value();
    }
    if (start >= end) continue;
    state[p] = {end, false};
    assignment.push_back(RdKafka::TopicPartition::create(range.topic, p, start));
  }
  std::map<int32_t, std::vector<replay_record>> by_part;
  if (!assignment.empty()) {
    auto rc = c->assign(assignment);
    RdKafka::TopicPartition::destroy(assignment);
    if (rc != RdKafka::ERR_NO_ERROR) return kafka_error(range.topic + ": assign", rc);
  }
  size_t open = state.size();
  while (open > 0) {
    if (clock::now() > deadline) {
      c->close();
      return make_error(errc::kafka, range.topic + ": range not read within " +
                                         std::to_string(range.timeout_ms) + " ms (" +
                                         std::to_string(open) + " partitions unfinished)");
    }
    std::unique_ptr<RdKafka::Message> m(c->consume(200));
    const auto e = m->err();
    if (e == RdKafka::ERR__TIMED_OUT) continue;
    auto it = state.find(m->partition());
    if (e == RdKafka::ERR__PARTITION_EOF) {
      if (it != state.end() && !it->second.done) {
        it->second.done = true;
        --open;
      }
      continue;
    }
    if (e != RdKafka::ERR_NO_ERROR) {
      c->close();
      return kafka_error(range.topic + "/" + std::to_string(m->partition()) + ": consume", e);
    }
    if (it == state.end() || it->second.done) continue;
    if (m->offset() < it->second.end) {
      const int64_t ts = m->timestamp().timestamp;
      const bool in_time = (!range.from_ms || ts >= *range.from_ms) && (!range.to_ms || ts < *range.to_ms);
      if (in_time) {
        replay_record r;
        r.record.topic = m->topic_name();
        r.record.partition = m->partition();
        r.record.offset = m->offset();
        if (m->key()) r.record.key = *m->key();
        r.record.value.assign(static_cast<const char*>(m->payload()), m->len());
        r.record.timestamp_ms = ts;
        if (auto t = schemas::decode_ticket(r.record.value)) {
          const std::string where = r.record.topic + "/" + std::to_string(r.record.partition) + "/" +
                                    std::to_string(r.record.offset);
          auto l = label_from_attributes(t.value(), taxonomy, where);
          if (l) r.truth = std::move(l.value());  // a bad label on the wire leaves the record unlabelled
        }
        by_part[m->partition()].push_back(std::move(r));
      }
    }
    if (m->offset() >= it->second.end - 1) {
      it->second.done = true;
      --open;
    }
  }
  c->close();
  std::vector<replay_record> out;
  for (auto& [p, recs] : by_part) {
    for (auto& r : recs) out.push_back(std::move(r));
  }
  return out;
}

bool is_live_topic(const topology::config& cfg, const std::string& topic) {
  const auto& t = cfg.topics;
  return topic == t.tickets || topic == t.escalations || topic == t.dead_letter ||
         topic == t.corrections || (!t.routed_prefix.empty() && topic.rfind(t.routed_prefix, 0) == 0);
}

struct kafka_sink::impl : RdKafka::DeliveryReportCb {
  std::unique_ptr<RdKafka::Producer> producer;
  std::string prefix;
  const topology::config* cfg = nullptr;
  bool allow_live = false;
  size_t acked = 0, failed = 0;
  std::string first_error;
  void dr_cb(RdKafka::Message& m) override {
    if (m.err() == RdKafka::ERR_NO_ERROR) {
      ++acked;
    } else {
      if (failed++ == 0) first_error = m.topic_name() + ": " + m.errstr();
    }
  }
};

kafka_sink::kafka_sink(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
kafka_sink::~kafka_sink() {
  if (impl_ && impl_->producer) impl_->producer->flush(5000);
}

result<std::unique_ptr<kafka_sink>> kafka_sink::create(const topology::config& cfg,
                                                       const sink_options& options) {
  if (!options.allow_live_topics) {
    for (const auto& t : {cfg.topics.escalations, cfg.topics.dead_letter, cfg.topics.routed_prefix + "x"}) {
      if (is_live_topic(cfg, options.prefix + t)) {
        return make_error(errc::live_topic, "output prefix '" + options.prefix + "' would write " +
                                                options.prefix + t +
                                                ", a live topic; pick another prefix or pass --allow-live-topics");
      }
    }
  }
  auto i = std::make_unique<impl>();
  i->prefix = options.prefix;
  i->cfg = &cfg;
  i->allow_live = options.allow_live_topics;
  auto conf = workers::make_conf(cfg.kafka.settings, {{"enable.idempotence", "true"}});
  if (!conf) return make_error(errc::bad_option, conf.error().message);
  std::string err;
  if (conf.value()->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(i.get()), err) !=
      RdKafka::Conf::CONF_OK) {
    return make_error(errc::kafka, "replay producer: " + err);
  }
  i->producer.reset(RdKafka::Producer::create(conf.value().get(), err));
  if (!i->producer) return make_error(errc::kafka, "replay producer: " + err);
  return std::unique_ptr<kafka_sink>(new kafka_sink(std::move(i)));
}

result<size_t> kafka_sink::write(std::span<const workers::output_record> outputs, int timeout_ms) {
  auto& s = *impl_;
  const size_t acked_before = s.acked;
  for (const auto& o : outputs) {
    const std::string topic = s.prefix + o.topic;
    if (!s.allow_live && is_live_topic(*s.cfg, topic)) {
      return make_error(errc::live_topic, "refusing to write " + topic +
                                              ", a live topic, without --allow-live-topics");
    }
    RdKafka::ErrorCode rc;
    while ((rc = s.producer->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                                     const_cast<char*>(o.value.data()), o.value.size(), o.key.data(),
                                     o.key.size(), 0, nullptr)) == RdKafka::ERR__QUEUE_FULL) {
      s.producer->poll(100);
    }
    if (rc != RdKafka::ERR_NO_ERROR) return kafka_error("produce to " + topic, rc);
    s.producer->poll(0);
  }
  const auto rc = s.producer->flush(timeout_ms);
  if (rc != RdKafka::ERR_NO_ERROR) return kafka_error("flush", rc);
  if (s.failed > 0) {
    return make_error(errc::kafka, std::to_string(s.failed) + " outputs not delivered; first: " + s.first_error);
  }
  return s.acked - acked_before;
}

}  // namespace triage::replay
