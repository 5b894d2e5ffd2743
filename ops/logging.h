// logging.h: process-wide logging set-up (spdlog), plain or JSON lines on stderr.
//
//   triage::ops::init_logging({.json = true});
//   spdlog::info("assigned {} partitions", n);
//
// JSON lines carry time, level and message; callers put topic, partition and
// offset into the message context. Ticket text is never logged by default.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace triage::ops {

struct logging_options {
  // One JSON object per line instead of plain text. Default: false.
  bool json = false;
  // trace, debug, info, warn, error, critical, off. Default: "info"; the
  // TRIAGE_LOG_LEVEL environment variable overrides it.
  std::string level = "info";
};

// Makes the "triage" logger on stderr the default logger.
void init_logging(const logging_options& options);

// A logger writing to `sink` with the given options (what init_logging uses).
std::shared_ptr<spdlog::logger> make_logger(const logging_options& options, spdlog::sink_ptr sink);

}  // namespace triage::ops
