// kafka_test_util.h: what broker tests share: the broker address from the
// kafka_broker fixture, unique names, producing, and reading topics back
// with read_committed.
#pragma once

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>

#include "workers/kafka_conf.h"

namespace triage::testing {

inline std::string bootstrap() {
  if (const char* b = std::getenv("TRIAGE_KAFKA_BOOTSTRAP"); b && *b) return b;
  const char* dir = std::getenv("TRIAGE_KAFKA_DIR");
  if (!dir) return {};
  std::ifstream in(std::string(dir) + "/bootstrap");
  std::string address;
  in >> address;
  return address;
}

// Starts `args` (args[0] is the binary) with its stderr on a pipe; returns
// the pid and the pipe's read end ({-1, -1} if the pipe cannot be made).
inline std::pair<pid_t, int> spawn_with_stderr(std::vector<std::string> args) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, -1};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

inline std::string unique_name(const std::string& prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  return prefix + "-" + std::to_string(rng() % 1000000000u);
}

struct consumed {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
};

inline std::unique_ptr<RdKafka::Producer> make_producer(const workers::settings_map& settings) {
  auto conf = workers::make_conf(settings);
  EXPECT_TRUE(conf) << conf.error().message;
  std::string err;
  std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf.value().get(), err));
  EXPECT_TRUE(p) << err;
  return p;
}

inline void produce(RdKafka::Producer& p, const std::string& topic, const std::string& key,
                    const std::string& value, int32_t partition = RdKafka::Topic::PARTITION_UA) {
  RdKafka::ErrorCode rc;
  while ((rc = p.produce(topic, partition, RdKafka::Producer::RK_MSG_COPY,
                         const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0,
                         nullptr)) == RdKafka::ERR__QUEUE_FULL) {
    p.poll(100);
  }
  ASSERT_EQ(rc, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(rc);
}

// Reads `topics` from the start with read_committed until `expected` records
// arrived (then 2 s more, so duplicates would show) or `timeout` passed.
inline std::vector<consumed> consume_all(const std::string& servers,
                                         const std::vector<std::string>& topics, size_t expected,
                                         std::chrono::seconds timeout = std::chrono::seconds(60)) {
  using clock = std::chrono::steady_clock;
  auto conf = workers::make_conf({{"bootstrap.servers", servers}},
                                 {{"group.id", unique_name("reader")},
                                  {"auto.offset.reset", "earliest"},
                                  {"isolation.level", "read_committed"},
                                  {"enable.auto.commit", "false"},
                                  {"topic.metadata.refresh.interval.ms", "1000"}});
  EXPECT_TRUE(conf) << conf.error().message;
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.value().get(), err));
  EXPECT_TRUE(c) << err;
  std::vector<consumed> out;
  if (!c) return out;
  c->subscribe(topics);
  const auto deadline = clock::now() + timeout;
  auto quiet_until = clock::time_point::max();
  while (clock::now() < std::min(deadline, quiet_until)) {
    std::unique_ptr<RdKafka::Message> m(c->consume(200));
    if (m->err() == RdKafka::ERR_NO_ERROR) {
      out.push_back({m->topic_name(), m->partition(), m->offset(), m->key() ? *m->key() : "",
                     std::string(static_cast<const char*>(m->payload()), m->len())});
      if (out.size() == expected) quiet_until = clock::now() + std::chrono::seconds(2);
    } else if (m->err() != RdKafka::ERR__TIMED_OUT && m->err() != RdKafka::ERR__PARTITION_EOF &&
               m->err() != RdKafka::ERR_UNKNOWN_TOPIC_OR_PART) {
      ADD_FAILURE() << "consume: " << m->errstr();
    }
  }
  c->close();
  return out;
}

}  // namespace triage::testing
