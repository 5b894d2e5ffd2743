// thread_pool.h: a small persistent pool for the CPU kernels. Threads are
// started once and wait between jobs (spinning briefly, then sleeping), so a
// forward pass's hundreds of short parallel regions do not pay thread
// start-up. The calling thread takes part as thread 0.
//
//   triage::cpu::thread_pool pool(2);                 // 0 = hardware threads
//   pool.parallel_for(n_rows, 16, [&](int64_t r0, int64_t r1) { ... });
//   pool.run([&](int t) { ... });                     // once per thread, t in [0, size())
//
// parallel_for never waits for a worker that has not started: chunks are
// handed out dynamically and the caller takes whatever is left, so a worker
// the OS has descheduled (other processes on the machine) costs at most the
// chunk it holds, not the whole region.
//
// Jobs must not throw (that terminates) and must not call back into the same
// pool. One caller at a time: concurrent callers are serialised.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace triage::cpu {

class thread_pool {
 public:
  // n_threads including the caller; 0 means std::thread::hardware_concurrency().
  explicit thread_pool(int n_threads = 0);
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(t) for every t in [0, size()), in parallel, and waits for all.
  template <class F>
  void run(F&& fn) {
    using fn_t = std::remove_reference_t<F>;
    run_erased([](void* ctx, int t) { (*static_cast<fn_t*>(ctx))(t); },
               const_cast<void*>(static_cast<const void*>(&fn)), true);
  }

  // Calls fn(begin, end) over [0, n) in chunks of at most `grain`, handed out
  // dynamically. Runs inline when one chunk covers everything.
  template <class F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    if (n_threads_ == 1 || n <= grain) {
      fn(int64_t{0}, n);
      return;
    }
    std::atomic<int64_t> next{0};
    auto body = [&](int) {
      for (;;) {
        const int64_t b = next.fetch_add(grain, std::memory_order_relaxed);
        if (b >= n) break;
        fn(b, std::min(n, b + grain));
      }
    };
    run_erased([](void* ctx, int t) { (*static_cast<decltype(body)*>(ctx))(t); }, &body, false);
  }

 private:
  // all_threads: every worker runs the job once (run); otherwise workers
  // that arrive after the caller finished its own share skip it.
  void run_erased(void (*call)(void*, int), void* ctx, bool all_threads);
  void worker(int index);

  int n_threads_ = 1;
  std::vector<std::thread> threads_;
  std::mutex caller_;  // serialises callers

  // The current job, published by bumping generation_.
  void (*call_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  // Who may still run the job: (generation << 32) | open bit << 31 | workers
  // inside the job. A worker enters only while the job is open; the caller
  // closes it once its own share is done and waits for those inside.
  std::atomic<uint64_t> state_{0};
  std::atomic<int> finished_{0};  // workers done with the current job
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace triage::cpu
