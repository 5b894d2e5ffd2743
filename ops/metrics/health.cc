#include "ops/metrics/health.h"

namespace triage::ops {

void health::declare(std::initializer_list<std::string> names) {
  std::lock_guard lock(mu_);
  for (const auto& n : names) checks_.try_emplace(n, false);
}

void health::set(const std::string& name, bool passing) {
  std::lock_guard lock(mu_);
  checks_[name] = passing;
}

void health::set_stopping() { stopping_.store(true); }

void health::heartbeat_at(clock::time_point t) {
  const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  last_beat_ns_.store(ns == 0 ? 1 : ns);
}

bool health::ready() const {
  if (stopping_.load() || !alive_.load()) return false;
  std::lock_guard lock(mu_);
  for (const auto& [name, ok] : checks_)
    if (!ok) return false;
  return true;
}

bool health::live_at(clock::time_point now) const {
  if (!alive_.load()) return false;
  const int64_t last = last_beat_ns_.load();
  if (opts_.stall_limit_ms <= 0 || last == 0) return true;
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  return now_ns - last <= opts_.stall_limit_ms * 1'000'000;
}

std::string health::describe() const {
  std::string out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, ok] : checks_) out += name + (ok ? " ok\n" : " failing\n");
  }
  if (!alive_.load()) out += "dead\n";
  if (stopping_.load()) out += "stopping\n";
  return out;
}

}  // namespace triage::ops
