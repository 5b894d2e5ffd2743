// fuzz_check.h: the one assertion the fuzz targets share. A broken property
// (a round trip that changes the value, an error without a message) prints
// what failed and aborts, which libFuzzer records as a crash with its input.
//
//   FUZZ_CHECK(r.has_value() || !r.error().message.empty(), "error without a message");
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                            \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: property failed: %s (%s)\n", __FILE__, __LINE__, what, \
                   #cond);                                                                \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
