#include "ops/logging.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace triage::ops {
namespace {

thread_local log_fields current_fields;

void append_escaped(std::string_view text, spdlog::memory_buf_t& dest) {
  for (char c : text) {
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

void append_number(int64_t v, spdlog::memory_buf_t& dest) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  dest.append(std::string_view(buf, static_cast<size_t>(n)));
}

// %C: the thread's log context as JSON members, each followed by a comma
// ("worker":"w1-0","partition":3,), nothing when the context is empty.
class json_context_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto& f = current_fields;
    auto text = [&](std::string_view key, std::string_view v) {
      if (v.empty()) return;
      dest.append(key);
      dest.push_back('"');
      append_escaped(v, dest);
      dest.append(std::string_view("\","));
    };
    auto number = [&](std::string_view key, int64_t v) {
      if (v < 0) return;
      dest.append(key);
      append_number(v, dest);
      dest.push_back(',');
    };
    text("\"worker\":", f.worker);
    text("\"topic\":", f.topic);
    number("\"partition\":", f.partition);
    number("\"offset\":", f.offset);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_context_flag>();
  }
};

// %C in plain lines: "[tickets/3@42] " (the parts present), or nothing. The
// worker is left out: plain messages name it themselves.
class plain_context_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto& f = current_fields;
    if (f.topic.empty() && f.partition < 0 && f.offset < 0) return;
    dest.push_back('[');
    dest.append(f.topic);
    if (f.partition >= 0) {
      dest.push_back('/');
      append_number(f.partition, dest);
    }
    if (f.offset >= 0) {
      dest.push_back('@');
      append_number(f.offset, dest);
    }
    dest.append(std::string_view("] "));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<plain_context_flag>();
  }
};

// %j: the message escaped for a JSON string, so a JSON log line always parses
// whatever the message holds (quotes, newlines, control bytes).
class json_message_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    append_escaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
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
    formatter->add_flag<json_message_flag>('j');
    formatter->add_flag<json_context_flag>('C').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%C"msg":"%j"})");
    logger->set_formatter(std::move(formatter));
  } else {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<plain_context_flag>('C').set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %C%v");
    logger->set_formatter(std::move(formatter));
  }
  const char* env = std::getenv("TRIAGE_LOG_LEVEL");
  logger->set_level(spdlog::level::from_str(env ? env : options.level));
  return logger;
}

log_scope::log_scope(const log_fields& fields) : previous_(current_fields) {
  if (!fields.worker.empty()) current_fields.worker = fields.worker;
  if (!fields.topic.empty()) current_fields.topic = fields.topic;
  if (fields.partition >= 0) current_fields.partition = fields.partition;
  if (fields.offset >= 0) current_fields.offset = fields.offset;
}

log_scope::~log_scope() { current_fields = previous_; }

const log_fields& log_context() { return current_fields; }

void init_logging(const logging_options& options) {
  spdlog::set_default_logger(
      make_logger(options, std::make_shared<spdlog::sinks::stderr_sink_mt>()));
}

}  // namespace triage::ops
