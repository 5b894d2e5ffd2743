#!/usr/bin/env bash
# Single-node Apache Kafka broker in KRaft mode on 127.0.0.1, for development
# and tests. The jars come from ops/setup.sh (Maven, into the cache).
#
#   ops/kafka.sh start [--dir DIR]   start a broker on a free port, wait until it
#                                    serves requests, print its bootstrap address
#   ops/kafka.sh stop  [--dir DIR]   stop it cleanly and remove its log directory
#   ops/kafka.sh status [--dir DIR]  print the bootstrap address if it is running
#   ops/kafka.sh restart [--dir DIR] [--hard]
#                                    stop the broker (SIGTERM; --hard: SIGKILL, a
#                                    crash) and start it again on the same ports
#                                    and data, for fault-injection tests
#
# start --sasl adds a SASL_PLAINTEXT listener (mechanism PLAIN) beside the
# PLAINTEXT one, with one user, "triage", whose random password is written to
# DIR/sasl.password (mode 600); its address goes to DIR/sasl_bootstrap.
# start --ssl adds an SSL listener with a certificate for 127.0.0.1 signed by a
# throw-away CA made with openssl: the CA in DIR/ssl/ca.pem, the address in
# DIR/ssl_bootstrap.
# start --sasl --ssl also adds a SASL_SSL listener (the same certificate) with
# one user, "triage-tls", for the mechanisms SCRAM-SHA-512 (its credential
# stored when the log directory is formatted: KRaft's StorageTool --add-scram)
# and PLAIN; its random password in DIR/sasl_ssl.password (mode 600), the
# address in DIR/sasl_ssl_bootstrap. (librdkafka before 2.6.1 cannot do SCRAM
# with Kafka 4.x brokers: it repeats the client nonce, librdkafka#4895.)
#
# TRIAGE_KAFKA_PROPERTIES: extra server.properties lines for start (e.g.
# "group.min.session.timeout.ms=1000" for tests that want quick rebalances).
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
dir=""; sasl=0; ssl=0; hard=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --sasl) sasl=1; shift ;;
    --ssl) ssl=1; shift ;;
    --hard) hard=1; shift ;;
    *) die "unknown argument '$1' (usage: kafka.sh start|stop|status|restart [--dir DIR] [--sasl] [--ssl] [--hard])" ;;
  esac
done

is_running() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

jvm_cmd() {
  jvm=(java -Xms256m -Xmx768m -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
       "-Dlog4j2.configurationFile=$dir/log4j2.properties" -cp "$libs/*")
}

# Starts the broker of $dir from its server.properties and waits until it
# serves requests on the port in $dir/bootstrap.
launch() {
  jvm_cmd
  local port; port="$(cut -d: -f2 "$dir/bootstrap")"
  # Ready means the broker logged that it started (since this launch) and its
  # port accepts connections.
  local started_before; started_before="$(grep -c "Kafka Server started" "$dir/broker.log" 2>/dev/null || true)"
  nohup "${jvm[@]}" kafka.Kafka "$dir/server.properties" >>"$dir/broker.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 $((start_timeout * 4))); do
    is_running "$dir" || die "broker exited during start-up; last lines of $dir/broker.log:
$(tail -20 "$dir/broker.log")"
    if [ "$(grep -c "Kafka Server started" "$dir/broker.log" 2>/dev/null || true)" -gt "${started_before:-0}" ] &&
       (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "kafka.sh: broker ready in $dir" >&2
      return 0
    fi
    sleep 0.25
  done
  kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
  die "broker did not become ready within ${start_timeout}s; see $dir/broker.log"
}

# Stops the broker of $dir (SIGTERM, SIGKILL after 30 s; $1 = KILL: at once).
halt() {
  is_running "$dir" || return 0
  local pid; pid="$(cat "$dir/pid")"
  kill -"${1:-TERM}" "$pid"
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka.sh: broker $pid did not stop within 30s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
}

case "$cmd" in
  start)
    command -v java >/dev/null || die "java not found (run ops/setup.sh)"
    ls "$libs"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no Kafka jars in $libs (run ops/setup.sh)"
    if [ -z "$dir" ]; then dir="$(mktemp -d "${TMPDIR:-/tmp}/triage-kafka.XXXXXX")"; fi
    mkdir -p "$dir"
    if is_running "$dir"; then die "a broker is already running in $dir ($(cat "$dir/bootstrap"))"; fi
    port="$(free_port)"; cport="$(free_port)"
    while [ "$cport" = "$port" ]; do cport="$(free_port)"; done
    rm -rf "$dir/data" "$dir/ssl"
    rm -f "$dir/sasl_bootstrap" "$dir/sasl.password" "$dir/ssl_bootstrap" "$dir/sasl_ssl_bootstrap" \
          "$dir/sasl_ssl.password"
    scram=()
    extra_listeners=""; extra_advertised=""; extra_map=""
    if [ $sasl = 1 ]; then
      sport="$(free_port)"
      while [ "$sport" = "$port" ] || [ "$sport" = "$cport" ]; do sport="$(free_port)"; done
      extra_listeners=",SASL_PLAINTEXT://127.0.0.1:$sport"; extra_advertised="$extra_listeners"
      extra_map=",SASL_PLAINTEXT:SASL_PLAINTEXT"
      (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$dir/sasl.password")
      echo "127.0.0.1:$sport" >"$dir/sasl_bootstrap"
    fi
    if [ $ssl = 1 ] && ! command -v openssl >/dev/null; then
      echo "kafka.sh: openssl not found: no SSL listener" >&2; ssl=0
    fi
    if [ $ssl = 1 ]; then
      tport="$(free_port)"
      while [ "$tport" = "$port" ] || [ "$tport" = "$cport" ] || [ "$tport" = "${sport:-}" ]; do tport="$(free_port)"; done
      extra_listeners="$extra_listeners,SSL://127.0.0.1:$tport"; extra_advertised="$extra_listeners"
      extra_map="$extra_map,SSL:SSL"
      rm -rf "$dir/ssl"; mkdir -p "$dir/ssl"
      (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$dir/ssl/keystore.password")
      (
        cd "$dir/ssl"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 7 -subj "/CN=triage test CA"
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
        printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.crt -days 7 -extfile san.ext
        openssl pkcs12 -export -in server.crt -inkey server.key -certfile ca.pem -out server.p12 \
          -passout "file:keystore.password"
        rm -f ca.key server.key server.csr
      ) >"$dir/ssl/openssl.log" 2>&1 || die "making the test certificates failed: $(tail -5 "$dir/ssl/openssl.log")"
      echo "127.0.0.1:$tport" >"$dir/ssl_bootstrap"
    fi
    if [ $sasl = 1 ] && [ $ssl = 1 ]; then
      uport="$(free_port)"
      while [ "$uport" = "$port" ] || [ "$uport" = "$cport" ] || [ "$uport" = "$sport" ] || [ "$uport" = "$tport" ]; do
        uport="$(free_port)"
      done
      extra_listeners="$extra_listeners,SASL_SSL://127.0.0.1:$uport"; extra_advertised="$extra_listeners"
      extra_map="$extra_map,SASL_SSL:SASL_SSL"
      (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$dir/sasl_ssl.password")
      # The SCRAM credential goes into the metadata when the storage is formatted.
      scram=(--add-scram "SCRAM-SHA-512=[name=triage-tls,password=$(cat "$dir/sasl_ssl.password")]")
      echo "127.0.0.1:$uport" >"$dir/sasl_ssl_bootstrap"
    fi
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport$extra_listeners
advertised.listeners=PLAINTEXT://127.0.0.1:$port$extra_advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT$extra_map
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
    if [ $ssl = 1 ]; then
      chmod 600 "$dir/server.properties"
      cat >>"$dir/server.properties" <<EOF
listener.name.ssl.ssl.keystore.type=PKCS12
listener.name.ssl.ssl.keystore.location=$dir/ssl/server.p12
listener.name.ssl.ssl.keystore.password=$(cat "$dir/ssl/keystore.password")
listener.name.ssl.ssl.key.password=$(cat "$dir/ssl/keystore.password")
EOF
    fi
    [ -z "${TRIAGE_KAFKA_PROPERTIES:-}" ] || printf '%s\n' "$TRIAGE_KAFKA_PROPERTIES" >>"$dir/server.properties"
    if [ $sasl = 1 ]; then
      # The broker's own entry (username/password) is required by the login
      # module even though inter-broker traffic stays on PLAINTEXT.
      chmod 600 "$dir/server.properties"
      cat >>"$dir/server.properties" <<EOF
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="triage" password="$(cat "$dir/sasl.password")" user_triage="$(cat "$dir/sasl.password")";
EOF
    fi
    if [ -f "$dir/sasl_ssl_bootstrap" ]; then
      # SASL_SSL: the SSL listener's keystore; SCRAM-SHA-512 checked against
      # the credential stored at format time (the login module needs no
      # user), PLAIN against the user in its JAAS entry.
      chmod 600 "$dir/server.properties"
      cat >>"$dir/server.properties" <<EOF
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="triage-tls" password="$(cat "$dir/sasl_ssl.password")" user_triage-tls="$(cat "$dir/sasl_ssl.password")";
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$dir/ssl/server.p12
listener.name.sasl_ssl.ssl.keystore.password=$(cat "$dir/ssl/keystore.password")
listener.name.sasl_ssl.ssl.key.password=$(cat "$dir/ssl/keystore.password")
EOF
    fi
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
    jvm_cmd
    "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" ${scram[@]+"${scram[@]}"} \
      >"$dir/format.log" 2>&1 || die "formatting the log directory failed: $(tail -5 "$dir/format.log")"
    : >"$dir/broker.log"
    echo "127.0.0.1:$port" >"$dir/bootstrap"
    mkdir -p "$cache"; echo "$dir" >"$last"
    launch
    [ $sasl = 0 ] || echo "kafka.sh: SASL_PLAINTEXT (PLAIN, user triage) on $(cat "$dir/sasl_bootstrap")" >&2
    [ $ssl = 0 ] || echo "kafka.sh: SSL on $(cat "$dir/ssl_bootstrap"), CA $dir/ssl/ca.pem" >&2
    [ ! -f "$dir/sasl_ssl_bootstrap" ] ||
      echo "kafka.sh: SASL_SSL (SCRAM-SHA-512 and PLAIN, user triage-tls) on $(cat "$dir/sasl_ssl_bootstrap")" >&2
    echo "127.0.0.1:$port"
    ;;
  restart)
    [ -n "$dir" ] || dir="$(cat "$last" 2>/dev/null || true)"
    [ -n "$dir" ] && [ -f "$dir/server.properties" ] || die "no broker directory to restart"
    if [ $hard = 1 ]; then halt KILL; else halt TERM; fi
    launch
    cat "$dir/bootstrap"
    ;;
  stop)
    [ -n "$dir" ] || dir="$(cat "$last" 2>/dev/null || true)"
    [ -n "$dir" ] && [ -d "$dir" ] || { echo "kafka.sh: no broker directory to stop" >&2; exit 0; }
    halt TERM
    rm -rf "$dir"
    if [ "$(cat "$last" 2>/dev/null || true)" = "$dir" ]; then rm -f "$last"; fi
    ;;
  status)
    [ -n "$dir" ] || dir="$(cat "$last" 2>/dev/null || true)"
    if [ -n "$dir" ] && is_running "$dir"; then cat "$dir/bootstrap"; else echo "not running" >&2; exit 1; fi
    ;;
  *)
    die "usage: kafka.sh start|stop|status|restart [--dir DIR] [--sasl] [--ssl] [--hard]"
    ;;
esac
