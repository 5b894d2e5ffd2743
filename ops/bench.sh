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
#   ops/bench.sh vulkan-peer       prefill tokens/s, Triage vs llama.cpp, Vulkan and
#                                  CPU, same device (ops/vulkan_peer_bench.sh)
# BENCH_BUILD_DIR (default: build) is the build directory used.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-}"; shift || true
build="${BENCH_BUILD_DIR:-build}"
# bench TARGET FUNCTION [args]: builds TARGET, starts a broker (KRaft, on
# loopback) for FUNCTION, which finds it in $bootstrap, and stops it after.
bench() {
  local target="$1" fn="$2"; shift 2
  ops/build.sh --dir "$build" --target "$target" >/dev/null
  dir="$(mktemp -d)"
  trap 'ops/kafka.sh stop --dir "$dir"' EXIT
  bootstrap="$(ops/kafka.sh start --dir "$dir")"
  echo "load before: $(uptime)"
  "$fn" "$@"
  echo "load after: $(uptime)"
}
both_deliveries() {
  for delivery in exactly_once at_least_once; do
    "$build/workers/${what}_bench" --bootstrap "$bootstrap" --delivery "$delivery" "$@"
  done
}
soak() { "$build/workers/soak_bench" --bootstrap "$bootstrap" "$@"; }
case "$what" in
  pipeline|latency) bench "${what}_bench" both_deliveries "$@" ;;
  soak) bench soak_bench soak "$@" ;;
  vulkan-peer) exec ops/vulkan_peer_bench.sh "$@" ;;
  *)
    echo "usage: ops/bench.sh pipeline|latency|soak|vulkan-peer [args]" >&2
    exit 2
    ;;
esac
