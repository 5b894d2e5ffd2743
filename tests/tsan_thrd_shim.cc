// tsan_thrd_shim.cc: C11 thrd_create/thrd_join/thrd_detach over pthreads,
// linked into the TSan test programs only (tests/CMakeLists.txt, TRIAGE_TSAN).
// librdkafka starts its threads with glibc's thrd_create, which calls
// glibc's pthread internals directly, past ThreadSanitizer's pthread_create
// interceptor (GCC 12's libtsan has none for thrd_create): TSan then runs
// those threads without its per-thread state and crashes in their first
// malloc. Defined in the executable, these take precedence over glibc's for
// librdkafka, so TSan sees every thread start and join.
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace {

struct start {
  thrd_start_t func;
  void* arg;
};

void* trampoline(void* p) {
  const start s = *static_cast<start*>(p);
  std::free(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(s.func(s.arg)));
}

}  // namespace

extern "C" int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  auto* s = static_cast<start*>(std::malloc(sizeof(start)));
  if (s == nullptr) return thrd_nomem;
  *s = start{func, arg};
  const int rc = pthread_create(thr, nullptr, trampoline, s);
  if (rc != 0) std::free(s);
  return rc == 0 ? thrd_success : rc == EAGAIN ? thrd_nomem : thrd_error;
}

extern "C" int thrd_join(thrd_t thr, int* res) {
  void* ret = nullptr;
  if (pthread_join(thr, &ret) != 0) return thrd_error;
  if (res != nullptr) *res = static_cast<int>(reinterpret_cast<intptr_t>(ret));
  return thrd_success;
}

extern "C" int thrd_detach(thrd_t thr) { return pthread_detach(thr) == 0 ? thrd_success : thrd_error; }
