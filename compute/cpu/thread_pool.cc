#include "compute/cpu/thread_pool.h"

#include <sched.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace triage::cpu {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Spin this many rounds (tens of microseconds) before sleeping: enough to
// bridge the gap between consecutive kernels of one forward pass, short
// enough not to take CPU time from the caller when the machine is shared.
constexpr int spin_rounds = 2000;

constexpr uint64_t open_bit = uint64_t{1} << 31;
constexpr uint64_t count_mask = open_bit - 1;

uint64_t state_of(uint64_t generation, bool open) {
  return (generation << 32) | (open ? open_bit : 0);
}

}  // namespace

thread_pool::thread_pool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  n_threads_ = std::max(1, n_threads);
  threads_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

thread_pool::~thread_pool() {
  {
    std::lock_guard lk(mutex_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void thread_pool::run_erased(void (*call)(void*, int), void* ctx, bool all_threads) {
  if (n_threads_ == 1) {
    call(ctx, 0);
    return;
  }
  std::lock_guard caller(caller_);
  call_ = call;
  ctx_ = ctx;
  finished_.store(0, std::memory_order_relaxed);
  const uint64_t g = generation_.load(std::memory_order_relaxed) + 1;
  state_.store(state_of(g, true), std::memory_order_relaxed);
  {
    // Under the mutex, so that a worker about to sleep cannot miss it.
    std::lock_guard lk(mutex_);
    generation_.store(g, std::memory_order_release);
  }
  wake_.notify_all();
  call(ctx, 0);

  auto wait_until = [&](auto done) {
    for (int spins = 0; !done(); ++spins) {
      if (spins < spin_rounds) {
        cpu_relax();
      } else {
        sched_yield();
      }
    }
  };
  if (all_threads) {
    // The job stays open until every worker has run it.
    wait_until([&] { return finished_.load(std::memory_order_acquire) == n_threads_ - 1; });
  }
  // Close the job: late workers skip it; wait for those inside.
  uint64_t s = state_.load(std::memory_order_acquire);
  while (!state_.compare_exchange_weak(s, s & ~open_bit, std::memory_order_acq_rel)) {
  }
  wait_until([&] { return (state_.load(std::memory_order_acquire) & count_mask) == 0; });
}

void thread_pool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spins = 0; g == seen && spins < spin_rounds; ++spins) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock lk(mutex_);
      wake_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    // Enter the job if it is still open (and still this generation).
    uint64_t s = state_.load(std::memory_order_acquire);
    bool entered = false;
    while ((s >> 32) == g && (s & open_bit) != 0) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
        entered = true;
        break;
      }
    }
    if (!entered) continue;
    call_(ctx_, index);
    finished_.fetch_add(1, std::memory_order_acq_rel);
    state_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace triage::cpu
