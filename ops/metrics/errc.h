// errc.h: error codes of the metrics and health endpoint, usable as std::error_code.
//
//   auto s = triage::ops::metrics_server::start(opts, registry, health);
//   if (!s && s.error().code == triage::ops::errc::bind_failed) ... // port taken
#pragma once

#include <system_error>
#include <type_traits>

#include "base/result.h"

namespace triage::ops {

enum class errc {
  // The listen address does not parse as host:port (or [v6]:port).
  bad_address = 1,
  // The address parsed but could not be bound (in use, not local, no permission).
  bind_failed,
};

const std::error_category& ops_category();
std::error_code make_error_code(errc e);

}  // namespace triage::ops

template <>
struct std::is_error_code_enum<triage::ops::errc> : std::true_type {};
