#!/usr/bin/env bash
# Single-node Apache Kafka broker in KRaft mode on 127.0.0.1, for development
# and tests. The jars come from ops/setup.sh (Maven, into the cache).
#
#   ops/kafka.sh start [--dir DIR]   start a broker on a free port, wait until it
#                                    serves requests, print its bootstrap address
#   ops/kafka.sh stop  [--dir DIR]   stop it cleanly and remove its log directory
#   ops/kafka.sh status [--dir DIR]  print the bootstrap address if it is running
#
# DIR holds the broker's config, logs, data, pid and bootstrap address. Without
# --dir, start makes a temporary one and stop uses the last one started.
set -euo pipefail

cache="${TRIAGE_CACHE:-$HOME/.cache/triage}"
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$(dirname "$0")/kafka/pom.xml")"
libs="${TRIAGE_KAFKA_LIBS:-$cache/kafka-$kafka_version/libs}"
last="$cache/kafka-last-dir"
start_timeout="${TRIAGE_KAFKA_START_TIMEOUT:-90}"

die() { echo "kafka.sh: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cmd="${1:-}"; shift || true
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    *) die "unknown argument '$1' (usage: kafka.sh start|stop|status [--dir DIR])" ;;
  esac
done

is_running() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

case "$cmd" in
  start)
    command -v java >/dev/null || die "java not found (run ops/setup.sh)"
    ls "$libs"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no Kafka jars in $libs (run ops/setup.sh)"
    if [ -z "$dir" ]; then dir="$(mktemp -d "${TMPDIR:-/tmp}/triage-kafka.XXXXXX")"; fi
    mkdir -p "$dir"
    if is_running "$dir"; then die "a broker is already running in $dir ($(cat "$dir/bootstrap"))"; fi
    port="$(free_port)"; cport="$(free_port)"
    while [ "$cport" = "$port" ]; do cport="$(free_port)"; done
    rm -rf "$dir/data"
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    cat >"$dir/log4j2.properties" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.kafka.name = org.apache.kafka
logger.kafka.level = warn
EOF
    cluster_id="$(python3 -c 'import base64,uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
    jvm=(java -Xms256m -Xmx768m -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
         "-Dlog4j2.configurationFile=$dir/log4j2.properties" -cp "$libs/*")
    "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
      >"$dir/format.log" 2>&1 || die "formatting the log directory failed: $(tail -5 "$dir/format.log")"
    nohup "${jvm[@]}" kafka.Kafka "$dir/server.properties" >"$dir/broker.log" 2>&1 &
    echo $! >"$dir/pid"
    echo "127.0.0.1:$port" >"$dir/bootstrap"
    mkdir -p "$cache"; echo "$dir" >"$last"
    # Ready means the broker logged that it started and its port accepts connections.
    for _ in $(seq 1 $((start_timeout * 4))); do
      is_running "$dir" || die "broker exited during start-up; last lines of $dir/broker.log:
$(tail -20 "$dir/broker.log")"
      if grep -q "Kafka Server started" "$dir/broker.log" 2>/dev/null &&
         (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "kafka.sh: broker ready in $dir" >&2
        echo "127.0.0.1:$port"
        exit 0
      fi
      sleep 0.25
    done
    kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
    die "broker did not become ready within ${start_timeout}s; see $dir/broker.log"
    ;;
  stop)
    [ -n "$dir" ] || dir="$(cat "$last" 2>/dev/null || true)"
    [ -n "$dir" ] && [ -d "$dir" ] || { echo "kafka.sh: no broker directory to stop" >&2; exit 0; }
    if is_running "$dir"; then
      pid="$(cat "$dir/pid")"
      kill -TERM "$pid"
      for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "kafka.sh: broker $pid did not stop within 30s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    rm -rf "$dir"
    if [ "$(cat "$last" 2>/dev/null || true)" = "$dir" ]; then rm -f "$last"; fi
    ;;
  status)
    [ -n "$dir" ] || dir="$(cat "$last" 2>/dev/null || true)"
    if [ -n "$dir" ] && is_running "$dir"; then cat "$dir/bootstrap"; else echo "not running" >&2; exit 1; fi
    ;;
  *)
    die "usage: kafka.sh start|stop|status [--dir DIR]"
    ;;
esac
