// errc.h: error codes of the state module, usable as std::error_code.
//
// Callers branch on the code (a corrupt store stops the worker; a restore
// that times out is retried by the next rebalance); the message of the
// triage::error names the store path, column family and key, or the topic
// and partition.
//
//   auto s = triage::state::store::open("var/state/w1-0");
//   if (!s && s.error().code == triage::state::errc::corrupt) wipe_and_restore();
#pragma once

#include <system_error>
#include <type_traits>

#include "base/result.h"

namespace triage::state {

enum class errc {
  // The store directory cannot be created, opened, read or written.
  io = 1,
  // The store's files are damaged (CURRENT, MANIFEST, SST checksums) or a
  // value does not decode.
  corrupt,
  // A caller broke a documented limit (an unknown column family, a bad key).
  invalid_argument,
  // A Kafka call failed (changelog topic, restore consumer).
  kafka,
  // A restore did not reach the end of the changelog, or what it restored
  // disagrees with the committed input offsets.
  restore_failed,
};

const std::error_category& state_category();
std::error_code make_error_code(errc e);

}  // namespace triage::state

template <>
struct std::is_error_code_enum<triage::state::errc> : std::true_type {};
