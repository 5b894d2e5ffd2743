// health.h: what /healthz (liveness) and /readyz (readiness) answer.
//
// Readiness is a set of named checks that all must pass; a check that was
// declared but never marked passing keeps the process unready. The worker
// declares "model" and "state" up front, marks "model" once the model is
// loaded, flips "state" to false on each assignment and back to true once
// every assigned partition's state is restored, and calls set_stopping() on
// SIGTERM so Kubernetes stops counting the pod as available while it drains.
//
//   triage::ops::health h;
//   h.declare({"model", "state"});
//   h.set("model", true);                  // model loaded
//   h.set("state", false); ... restore ... h.set("state", true);
//   h.heartbeat();                         // each pass of the consume loop
//   if (h.ready()) ...
//
// Liveness fails when the process marked itself dead (set_alive(false): a
// fatal error it cannot recover from in-process) or when heartbeats stopped
// for longer than the stall limit after the first one (a wedged loop). All
// calls are thread-safe; the HTTP server reads while the worker writes.
#pragma once

#include <atomic>
#include <chrono>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>

namespace triage::ops {

class health {
 public:
  using clock = std::chrono::steady_clock;

  struct options {
    // Liveness fails once no heartbeat came for this long (after the first
    // one; before it, e.g. while the model loads, only set_alive counts).
    // 0 disables the check. Keep it above state.restore_timeout_ms unless the
    // restore loop heartbeats too. Default: 300000 (5 min).
    int64_t stall_limit_ms = 300000;
  };

  health() : health(options{}) {}
  explicit health(options opts) : opts_(opts) {}

  // Adds checks that start failing (unless already set).
  void declare(std::initializer_list<std::string> names);
  // Sets a check, declaring it if new.
  void set(const std::string& name, bool passing);
  // Unready from now on, whatever the checks say (shutdown has begun).
  void set_stopping();
  void set_alive(bool alive) { alive_.store(alive); }
  void heartbeat() { heartbeat_at(clock::now()); }
  void heartbeat_at(clock::time_point t);

  bool ready() const;
  bool live() const { return live_at(clock::now()); }
  bool live_at(clock::time_point now) const;

  // One line per check, "model ok" / "state failing", plus "stopping" when
  // stopping: the body of /readyz, sorted by name.
  std::string describe() const;

 private:
  options opts_;
  mutable std::mutex mu_;
  std::map<std::string, bool> checks_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> alive_{true};
  std::atomic<int64_t> last_beat_ns_{0};  // steady_clock ns since epoch; 0: none yet
};

}  // namespace triage::ops
