// gate_backend.h: a test backend that classifies like the null backend but,
// from a chosen batch on, blocks in classify() until the test opens the gate:
// a "long batch" that lasts exactly as long as a test wants.
//
//   triage::testing::gate_backend model(categories, 1);  // the 2nd batch waits
//   ... model.wait_blocked(60s); ... model.open();
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "workers/backend.h"

namespace triage::testing {

// The null backend behind a gate: batches from number `block_from` on (0:
// the first) wait in classify() until open() is called.
class gate_backend final : public workers::backend {
 public:
  gate_backend(std::vector<std::string> categories, uint64_t block_from)
      : inner_(std::move(categories)), block_from_(block_from) {}
  std::string name() const override { return "gate"; }
  std::string model_version() const override { return "null"; }
  std::string adapter_version() const override { return "null"; }
  float threshold() const override { return 0.5f; }
  int estimate_tokens(const v1::TicketEvent& t) const override { return inner_.estimate_tokens(t); }
  std::vector<workers::decision> classify(std::span<const v1::TicketEvent* const> tickets) override {
    std::unique_lock lock(mutex_);
    if (calls_++ >= block_from_ && !open_) {
      ++waiting_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      --waiting_;
    }
    lock.unlock();
    return inner_.classify(tickets);
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  // Until a classify() call waits at the gate (false after `limit`).
  bool wait_blocked(std::chrono::seconds limit) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return waiting_ > 0; });
  }
  bool blocked() {
    std::lock_guard lock(mutex_);
    return waiting_ > 0;
  }
  uint64_t calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  workers::null_backend inner_;
  std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t block_from_;
  uint64_t calls_ = 0;
  int waiting_ = 0;
  bool open_ = false;
};

// Opens the gate when it goes out of scope: declared after the workers that
// use the gate, it lets their destructors (which wait for the backend) end
// even when an assertion left a test early.
struct gate_opener {
  gate_backend& gate;
  ~gate_opener() { gate.open(); }
};

}  // namespace triage::testing
