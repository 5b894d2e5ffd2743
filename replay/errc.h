// errc.h: the replay module's error codes, usable as std::error_code.
//
//   return make_error(replay::errc::malformed, "tickets.jsonl:12: label.urgency: expected 1..3");
//   if (r.error().code == replay::errc::malformed) ...
#pragma once

#include <string_view>
#include <system_error>

namespace triage::replay {

enum class errc {
  unreadable = 1,  // an input file cannot be opened or read
  malformed,       // an input's framing is broken (CSV quoting, protobuf length prefix, label)
  bad_option,      // an option is out of bounds or contradicts another
  kafka,           // the broker refused or failed a request
  live_topic,      // output would go to a live topic without --allow-live-topics
};

const std::error_category& replay_category();
inline std::error_code make_error_code(errc e) { return {static_cast<int>(e), replay_category()}; }

}  // namespace triage::replay

template <>
struct std::is_error_code_enum<triage::replay::errc> : std::true_type {};
