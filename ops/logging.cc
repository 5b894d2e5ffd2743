#include "ops/logging.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace triage::ops {
namespace {

// %j: the message escaped for a JSON string, so a JSON log line always parses
// whatever the message holds (quotes, newlines, control bytes).
class json_message_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned char>(c));
            dest.append(std::string_view(esc));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

}  // namespace

std::shared_ptr<spdlog::logger> make_logger(const logging_options& options, spdlog::sink_ptr sink) {
  auto logger = std::make_shared<spdlog::logger>("triage", std::move(sink));
  if (options.json) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<json_message_flag>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%j"})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  const char* env = std::getenv("TRIAGE_LOG_LEVEL");
  logger->set_level(spdlog::level::from_str(env ? env : options.level));
  return logger;
}

void init_logging(const logging_options& options) {
  spdlog::set_default_logger(
      make_logger(options, std::make_shared<spdlog::sinks::stderr_sink_mt>()));
}

}  // namespace triage::ops
