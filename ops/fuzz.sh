#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan into
# build-fuzz/ and runs each for a while on a copy of its seed corpus. Fails
# when any target crashes, leaks, hits undefined behaviour, times out on one
# input or runs out of memory; the input that did it is kept.
#
#   ops/fuzz.sh                        every target, 20 s each
#   ops/fuzz.sh --seconds 300          the long run (figures in tests/fuzz/README.md)
#   ops/fuzz.sh --target gguf          one target (repeat --target for more)
#   ops/fuzz.sh --no-build             use what build-fuzz/ holds
#   ops/fuzz.sh --dir D                another build directory
#   ops/fuzz.sh --work W               run directory (default: <build dir>/fuzz-runs)
#
# Targets: ticket_json ticket_protobuf gguf adapter config tokenizer.
# tests/fuzz/<target>.dict, where there is one, is passed as -dict.
# Each run works in build-fuzz/fuzz-runs/<target>/: corpus/ (the seeds plus
# what the run found; the committed corpus is never written) and crash-*,
# leak-*, timeout-*, oom-* (the failing inputs). Reproduce one with
#   build-fuzz/tests/fuzz/fuzz_<target> build-fuzz/fuzz-runs/<target>/crash-...
# Prints, per target: executions, executions/s, inputs added, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=20
dir=build-fuzz
build=1
runs=""
targets=()
all_targets=(ticket_json ticket_protobuf gguf adapter config tokenizer)
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --work) runs="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -d "tests/fuzz/corpus/$t" ] || { echo "fuzz.sh: no target '$t' (have: ${all_targets[*]})" >&2; exit 2; }
done

if [ $build = 1 ]; then
  cc=clang-14 cxx=clang++-14
  command -v "$cxx" >/dev/null || { cc=clang; cxx=clang++; }
  command -v "$cxx" >/dev/null || { echo "fuzz.sh: clang not found: run ops/setup.sh" >&2; exit 1; }
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  fi
  CC="$cc" CXX="$cxx" cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTRIAGE_FUZZ=ON "${launcher[@]}" >/dev/null
  cmake --build "$dir" -j "${TRIAGE_JOBS:-$(nproc)}" --target fuzz_targets
fi

# Leaks count as failures; undefined behaviour stops the target (it is built
# with -fno-sanitize-recover=undefined).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

runs="${runs:-$dir/fuzz-runs}"
failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$dir/tests/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz.sh: $bin is not built" >&2; exit 1; }
  work="$runs/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
  log="$work/fuzz.log"
  echo "fuzz.sh: $t for ${seconds}s ($log)"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  rc=0
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 \
    "${dict[@]}" -artifact_prefix="$work/" "$work/corpus" >"$log" 2>&1 || rc=$?
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  execs="$(stat number_of_executed_units)"
  per_s="$(stat average_exec_per_sec)"
  added="$(stat new_units_added)"
  rss="$(stat peak_rss_mb)"
  line="$(printf '%-16s %10s executions %8s/s %5s inputs added, peak RSS %s MB' \
    "$t" "${execs:-?}" "${per_s:-?}" "${added:-?}" "${rss:-?}")"
  if [ $rc != 0 ]; then
    artifacts="$(ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | tr '\n' ' ' || true)"
    line="$line: FAILED (exit $rc; ${artifacts:-no input saved})"
    failed+=("$t")
    tail -n 60 "$log" >&2
  else
    line="$line: ok"
  fi
  echo "fuzz.sh: $line"
  summary+=("$line")
done

echo "fuzz.sh: summary (${seconds}s per target)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs under $runs/<target>/)" >&2
  exit 1
fi
