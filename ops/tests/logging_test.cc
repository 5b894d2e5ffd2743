#include "ops/logging.h"

#include <sstream>
#include <string>

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

}  // namespace
}  // namespace triage::ops
