#!/usr/bin/env bash
# Benchmarks (programs that print figures; never timed tests).
#
#   ops/bench.sh pipeline [args]   worker overhead vs a plain Kafka pass-through,
#                                  on a broker this script starts and stops
#   ops/bench.sh latency [args]    the worker with the SLM at a steady offered
#                                  load: tickets/s and produce-to-routed latency
#                                  percentiles, exactly-once and at-least-once
#   ops/bench.sh soak [args]       the worker (null backend; --slm for the SLM)
#                                  at a steady offered load for --minutes
#                                  (default 10): a line of throughput, p50/p99
#                                  latency, RSS, state store memory and
#                                  queue depth every --interval s, then the
#                                  RSS trend
# BENCH_BUILD_DIR (default: build) is the build directory used.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-}"; shift || true
case "$what" in
  pipeline)
    ops/build.sh >/dev/null
    dir="$(mktemp -d)"
    trap 'ops/kafka.sh stop --dir "$dir"' EXIT
    bootstrap="$(ops/kafka.sh start --dir "$dir")"
    for delivery in exactly_once at_least_once; do
      build/workers/pipeline_bench --bootstrap "$bootstrap" --delivery "$delivery" "$@"
    done
    ;;
  latency)
    ops/build.sh >/dev/null
    dir="$(mktemp -d)"
    trap 'ops/kafka.sh stop --dir "$dir"' EXIT
    bootstrap="$(ops/kafka.sh start --dir "$dir")"
    for delivery in exactly_once at_least_once; do
      build/workers/latency_bench --bootstrap "$bootstrap" --delivery "$delivery" "$@"
    done
    ;;
  soak)
    build="${BENCH_BUILD_DIR:-build}"
    ops/build.sh --dir "$build" --target soak_bench >/dev/null
    dir="$(mktemp -d)"
    trap 'ops/kafka.sh stop --dir "$dir"' EXIT
    bootstrap="$(ops/kafka.sh start --dir "$dir")"
    echo "load before: $(uptime)"
    "$build"/workers/soak_bench --bootstrap "$bootstrap" "$@"
    echo "load after: $(uptime)"
    ;;
  *)
    echo "usage: ops/bench.sh pipeline|latency|soak [args]" >&2
    exit 2
    ;;
esac
