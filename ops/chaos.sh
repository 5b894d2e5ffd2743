#!/usr/bin/env bash
# The fault-injection suite (issue #11) against a real broker of its own:
# starts a single-node broker (ops/kafka.sh) in a fresh directory, runs
# chaos_run (tests/chaos/chaos_run.cc: tickets with malformed records mixed
# in, `triage worker --backend null` processes killed with SIGKILL and
# restarted, workers joining and leaving, a slow and a stalled consumer, the
# broker restarted mid-stream; then the exactly-once and state checks), and
# stops the broker whatever happens.
#
#   ops/chaos.sh                                  # the full run: 100000 records, 24 kills
#   ops/chaos.sh --tickets 20000 --kills 20 --duration 50   # what the chaos_test CTest test runs
#   ops/chaos.sh --build build-chaos --seed 42 --keep       # keep the work directory
#
# Options not listed here go to chaos_run (--workers, --partitions,
# --broker-hard, --malformed-every, ...; chaos_run --help). Exit status 0 only
# if every check passed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$here/../build"
keep=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
build="$(cd "$build" && pwd)"
for f in "$build/triage" "$build/tests/chaos/chaos_run"; do
  [ -x "$f" ] || { echo "chaos.sh: $f not built (cmake --build $build --target triage chaos_run)" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/triage-chaos.XXXXXX")"
kafka_dir="$work/kafka"
cleanup() {
  "$here/kafka.sh" stop --dir "$kafka_dir" >/dev/null 2>&1 || true
  if [ $keep = 0 ]; then rm -rf "$work"; else echo "chaos.sh: work directory kept: $work" >&2; fi
}
trap cleanup EXIT
# A low minimum session timeout lets the workers use 3 s sessions, so the
# group notices a killed member quickly and the run needs minutes, not tens.
TRIAGE_KAFKA_PROPERTIES="group.min.session.timeout.ms=1000" "$here/kafka.sh" start --dir "$kafka_dir" >/dev/null
rc=0
"$build/tests/chaos/chaos_run" --triage "$build/triage" --kafka-sh "$here/kafka.sh" --kafka-dir "$kafka_dir" \
  --work "$work/run" "${args[@]}" || rc=$?
if [ $rc != 0 ] && [ -d "$work/run/logs" ]; then
  # What the workers said last, for the failure report.
  for log in "$work/run/logs"/*.log; do
    echo "--- last lines of $(basename "$log")"; tail -15 "$log"
  done
  echo "--- last lines of the broker's log"; tail -20 "$kafka_dir/broker.log" 2>/dev/null || true
fi
exit $rc
