#include "ops/logging.h"

#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

namespace triage::ops {
namespace {

TEST(make_logger, json_lines_escape_the_message) {
  std::ostringstream out;
  auto logger = make_logger({.json = true}, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  logger->warn("topic={} said \"hi\"\\ then\nbye\x01", "tickets");
  const std::string line = out.str();
  EXPECT_NE(line.find(R"("level":"warning")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("msg":"topic=tickets said \"hi\"\\ then\nbye\u0001"})"), std::string::npos)
      << line;
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per record";
}

TEST(make_logger, level_filters) {
  std::ostringstream out;
  auto logger = make_logger({.level = "warn"}, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  logger->info("hidden");
  logger->error("shown");
  EXPECT_EQ(out.str().find("hidden"), std::string::npos);
  EXPECT_NE(out.str().find("shown"), std::string::npos);
}

TEST(log_scope, json_lines_carry_the_threads_context_and_nested_scopes_inherit_it) {
  std::ostringstream out;
  auto logger = make_logger({.json = true}, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  {
    log_scope who({.worker = "w1-0"});
    logger->info("started");
    {
      const std::string topic = "tick\"ets";
      log_scope rec({.topic = topic, .partition = 3, .offset = 42});
      logger->warn("undecodable");
    }
    logger->info("after");
  }
  logger->info("outside");
  std::istringstream lines(out.str());
  std::string started, record, after, outside;
  std::getline(lines, started);
  std::getline(lines, record);
  std::getline(lines, after);
  std::getline(lines, outside);
  EXPECT_NE(started.find(R"("level":"info","worker":"w1-0","msg":"started"})"), std::string::npos) << started;
  EXPECT_NE(record.find(R"("worker":"w1-0","topic":"tick\"ets","partition":3,"offset":42,"msg":"undecodable"})"),
            std::string::npos)
      << record;
  EXPECT_NE(after.find(R"("worker":"w1-0","msg":"after"})"), std::string::npos) << after;
  EXPECT_NE(outside.find(R"("level":"info","msg":"outside"})"), std::string::npos) << outside;
  EXPECT_EQ(log_context().partition, -1);
}

TEST(log_scope, the_context_belongs_to_the_thread_that_set_it) {
  std::ostringstream out;
  auto logger = make_logger({.json = true}, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  log_scope mine({.worker = "w1-0", .partition = 7});
  std::thread other([&] { logger->info("from another thread"); });
  other.join();
  EXPECT_NE(out.str().find(R"("level":"info","msg":"from another thread"})"), std::string::npos) << out.str();
  EXPECT_EQ(log_context().partition, 7);
}

TEST(log_scope, plain_lines_prefix_topic_partition_and_offset) {
  std::ostringstream out;
  auto logger = make_logger({}, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  {
    log_scope rec({.worker = "w1-0", .topic = "tickets", .partition = 3, .offset = 42});
    logger->warn("undecodable");
  }
  logger->warn("plain");
  EXPECT_NE(out.str().find("warning [tickets/3@42] undecodable\n"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("warning plain\n"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace triage::ops
