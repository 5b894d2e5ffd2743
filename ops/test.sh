#!/usr/bin/env bash
# The project's test command (README): installs what is missing, builds, and
# runs every test, then the fast tests again under ASan + UBSan, a short
# libFuzzer run of every fuzz target (ops/fuzz.sh) and the threaded tests
# under ThreadSanitizer.
#
#   ops/test.sh            everything (CI runs this through .ci/run)
#   ops/test.sh --quick    release build and tests only, no sanitizer, fuzz or TSan pass
#
# Test labels: fast (unit tests), vulkan (shaders on lavapipe), broker (a real
# Kafka broker started by the kafka_broker fixture, see tests/CMakeLists.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = --quick ] && quick=1

ops/setup.sh
ops/build.sh
# lavapipe is a CPU Vulkan driver; tests that use Vulkan select it explicitly.
ctest --test-dir build --output-on-failure --timeout 300 -j "$(nproc)"

if [ $quick = 0 ]; then
  ops/build.sh --sanitize
  # Leak detection stays on. Vulkan test binaries keep one context alive for
  # the whole process, because lavapipe's globals would otherwise be reported
  # as leaks once the loader unloads the driver (see compute/tests).
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  ctest --test-dir build-asan --output-on-failure --timeout 600 -L 'fast|vulkan' -j "$(nproc)"

  # libFuzzer (clang): only the libraries under fuzz into build-fuzz/, then
  # 15 s per target on a copy of its seed corpus (tests/fuzz/README.md).
  ops/fuzz.sh --seconds 15
  # ThreadSanitizer (gcc): only the test programs that run threads, label
  # tsan (tests/CMakeLists.txt), into build-tsan/.
  ops/build.sh --tsan --target tsan_tests
  ctest --test-dir build-tsan --output-on-failure --timeout 900 -L tsan -j "$(nproc)"
fi
echo "test.sh: all tests passed"
