#!/usr/bin/env bash
# Configures and builds Triage with CMake + Ninja.
#
#   ops/build.sh                 release build in build/ (binary: build/triage)
#   ops/build.sh --sanitize      ASan + UBSan build in build-asan/
#   ops/build.sh --dir D [-- extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) dir=build-asan; args+=(-DTRIAGE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug); shift ;;
    --dir) dir="$2"; shift 2 ;;
    --) shift; args+=("$@"); break ;;
    *) echo "build.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
jobs="${TRIAGE_JOBS:-$(nproc)}"
cmake --build "$dir" -j "$jobs"
