#!/usr/bin/env bash
# Configures and builds Triage with CMake + Ninja.
#
#   ops/build.sh                 release build in build/ (binary: build/triage)
#   ops/build.sh --sanitize      ASan + UBSan build in build-asan/
#   ops/build.sh --tsan          ThreadSanitizer build (gcc) in build-tsan/
#   ops/build.sh --target T      build only target T (repeatable; default: all)
#   ops/build.sh --dir D [-- extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
args=()
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) dir=build-asan; args+=(-DTRIAGE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug); shift ;;
    --tsan) dir=build-tsan; args+=(-DTRIAGE_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo); shift ;;
    --target) targets+=(--target "$2"); shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --) shift; args+=("$@"); break ;;
    *) echo "build.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

# ccache (ops/setup.sh installs it) with paths taken relative to the checkout,
# so a fresh clone reuses what an earlier build compiled. TRIAGE_CCACHE=0: off.
if [ "${TRIAGE_CCACHE:-1}" = 1 ] && command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  args=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache "${args[@]}")
fi
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
jobs="${TRIAGE_JOBS:-$(nproc)}"
cmake --build "$dir" -j "$jobs" "${targets[@]}"
