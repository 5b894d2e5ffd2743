// logging.h: process-wide logging set-up (spdlog), plain or JSON lines on stderr.
//
//   triage::ops::init_logging({.json = true});
//   spdlog::info("assigned {} partitions", n);
//
// JSON lines carry time, level, the calling thread's log context (worker,
// topic, partition, offset: set with log_scope) and the message. Plain lines
// carry topic/partition@offset as a [tickets/3@42] prefix. Ticket text
// is never logged by default.
//
//   triage::ops::log_scope who({.worker = "w1-0"});        // for this thread
//   triage::ops::log_scope rec({.topic = m.topic(), .partition = 3, .offset = 42});
//   spdlog::warn("undecodable ticket");   // {"time":..,"worker":"w1-0","topic":"tickets",
//                                         //  "partition":3,"offset":42,"msg":"undecodable ticket"}
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace triage::ops {

struct logging_options {
  // One JSON object per line instead of plain text. Default: false.
  bool json = false;
  // trace, debug, info, warn, error, critical, off. Default: "info"; the
  // TRIAGE_LOG_LEVEL environment variable overrides it.
  std::string level = "info";
};

// What a log line is about. Empty / negative fields are left out, and a
// nested scope inherits the fields it leaves empty from the one around it.
// The views must outlive the scope (a Kafka message's topic name does).
struct log_fields {
  std::string_view worker = {};  // Default: "" (inherit)
  std::string_view topic = {};   // Default: "" (inherit)
  int32_t partition = -1;   // Default: -1 (inherit)
  int64_t offset = -1;      // Default: -1 (inherit)
};

// Sets the calling thread's log context until it is destroyed (then the
// previous context is back). Cheap: no allocation, meant for per-record use.
class log_scope {
 public:
  explicit log_scope(const log_fields& fields);
  ~log_scope();
  log_scope(const log_scope&) = delete;
  log_scope& operator=(const log_scope&) = delete;

 private:
  log_fields previous_;
};

// The calling thread's current context.
const log_fields& log_context();

// Makes the "triage" logger on stderr the default logger.
void init_logging(const logging_options& options);

// A logger writing to `sink` with the given options (what init_logging uses).
std::shared_ptr<spdlog::logger> make_logger(const logging_options& options, spdlog::sink_ptr sink);

}  // namespace triage::ops
