#!/usr/bin/env bash
# Starts and stops the single-node Apache Kafka broker (KRaft) the integration tests use.
#   kafka.sh up      resolve jars with mvn (cached in ~/.m2), format storage once, start, wait
#   kafka.sh down    stop the broker this script started
#   kafka.sh status  exit 0 when the broker answers metadata requests
#   kafka.sh with CMD...  run CMD with KAFKA_BOOTSTRAP set, starting the broker first if it is
#                    not up and stopping it after (whatever CMD's exit) only if it started it;
#                    a broker it starts starts on empty storage (every test and bench run
#                    writes topics under a prefix of its own and reads nothing older, and the
#                    topics of earlier runs, kept, made start-up slower run after run: 1.7 GB
#                    of them once took it past the 90 s wait)
# Everything lives under target/kafka; the broker listens on 127.0.0.1 only: plaintext on
# HIRESTATE_TEST_KAFKA_PORT (19092), the controller on +1, SASL/PLAIN on +2, TLS on +3, SASL/PLAIN
# over TLS on +4, and TLS requiring a client certificate (mutual TLS) on +5, with self-signed test
# certificates made with the JDK's keytool under target/kafka/tls: ca.pem is the broker's, the one
# clients trust, other-ca.pem an unrelated one; client.pem / client-key.pem (and client.p12) the
# client certificate the mutual-TLS listener trusts, whose CN "hirestate" is mapped to that
# principal, stranger.pem / stranger-key.pem one it does not. A broker that does not answer within
# the wait is stopped again, not left running.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
base="$root/target/kafka"
port="${HIRESTATE_TEST_KAFKA_PORT:-19092}"
cport=$((port + 1))
sasl_port=$((port + 2))
ssl_port=$((port + 3))
sasl_ssl_port=$((port + 4))
mtls_port=$((port + 5))
tls="$base/tls"
bootstrap="127.0.0.1:$port"
pidfile="$base/broker.pid"
wait_secs="${KAFKA_WAIT_SECS:-90}"

resolve() {
  if [ -f "$base/lib/.complete" ]; then return; fi
  mkdir -p "$base/lib"
  echo "kafka.sh: resolving Apache Kafka and its runtime dependencies with mvn" >&2
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$base/lib"
  touch "$base/lib/.complete"
}

ping() {
  java -cp "$base/lib/*" "$here/Ping.java" "$bootstrap" >/dev/null 2>&1
}

# The TLS listeners' key and certificate (kept until target/ is cleaned), a second, unrelated
# certificate (a client trusting only that one must refuse the broker), and two client
# certificates: one the mutual-TLS listener trusts, one it does not.
certificates() {
  local f missing=
  for f in broker.p12 ca.pem other-ca.pem clients-trust.p12 client.p12 client.pem client-key.pem \
           stranger.pem stranger-key.pem; do
    [ -f "$tls/$f" ] || missing=1
  done
  [ -n "$missing" ] || return 0
  rm -rf "$tls.new"
  mkdir -p "$tls.new"
  local alias cn pass=hirestate-test-tls
  for alias in broker other client stranger; do
    case "$alias" in client) cn=hirestate ;; stranger) cn=stranger ;; *) cn=127.0.0.1 ;; esac
    { keytool -genkeypair -alias "$alias" -keyalg RSA -keysize 2048 -validity 3650 \
        -dname "CN=$cn, O=hirestate tests ($alias)" -ext "SAN=IP:127.0.0.1,DNS:localhost" \
        -keystore "$tls.new/$alias.p12" -storetype PKCS12 -storepass "$pass" -keypass "$pass" &&
      keytool -exportcert -rfc -alias "$alias" -keystore "$tls.new/$alias.p12" \
        -storepass "$pass" -file "$tls.new/$alias.pem"; } > "$tls.new/keytool.log" 2>&1 || {
      echo "kafka.sh: making the test TLS certificate with keytool failed:" >&2
      cat "$tls.new/keytool.log" >&2; exit 1; }
  done
  { keytool -importcert -noprompt -alias client -file "$tls.new/client.pem" \
      -keystore "$tls.new/clients-trust.p12" -storetype PKCS12 -storepass "$pass" &&
    java "$here/KeyPem.java" "$tls.new/client.p12" client "$pass" "$tls.new/client-key.pem" &&
    java "$here/KeyPem.java" "$tls.new/stranger.p12" stranger "$pass" "$tls.new/stranger-key.pem"
  } > "$tls.new/keytool.log" 2>&1 || {
    echo "kafka.sh: making the test client certificates failed:" >&2
    cat "$tls.new/keytool.log" >&2; exit 1; }
  rm -f "$tls.new/keytool.log" "$tls.new/stranger.p12"
  mv "$tls.new/broker.pem" "$tls.new/ca.pem"
  mv "$tls.new/other.pem" "$tls.new/other-ca.pem"
  rm -f "$tls.new/other.p12"
  rm -rf "$tls"
  mv "$tls.new" "$tls"
}

# The running broker was started from the current server.properties.in, Acls.java and
# certificate: one started from older ones (before the SASL listener, say) is restarted rather
# than reused.
config_sum() {
  cat "$here/server.properties.in" "$here/Acls.java" "$tls/ca.pem" "$tls/client.pem" |
    sha256sum | cut -d' ' -f1
}
current() {
  [ "$(cat "$base/config.sum" 2>/dev/null)" = "$(config_sum)" ]
}

# Whether the broker this checkout started runs: the pid file's process is alive AND is that
# broker (its command line names this checkout's server.properties). A pid file left from
# before a reboot can name an unrelated process by then, which `down` would have killed.
running() {
  local pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $base/server.properties"
}

# The broker's ports something already listens on. Checked before a start: the JVM would fail
# to bind them, while `ping` reached whatever answers on the plaintext port (another checkout's
# test broker, say) and took it for this one, so the tests ran against a broker started from
# other certificates and ACLs.
taken_ports() {
  local p taken=
  for p in "$port" "$cport" "$sasl_port" "$ssl_port" "$sasl_ssl_port" "$mtls_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then taken="$taken $p"; fi
  done
  echo "${taken# }"
}

up() {
  local fresh="${1:-}"
  resolve
  certificates
  if running && ping && current; then
    echo "kafka.sh: broker already up at $bootstrap (pid $(cat "$pidfile"))" >&2
    return
  fi
  if running; then
    echo "kafka.sh: the running broker's configuration changed since it started: restarting it" >&2
    down
  fi
  if [ "$fresh" = fresh ]; then
    down
    rm -rf "$base/data"
  fi
  local taken; taken=$(taken_ports)
  if [ -n "$taken" ]; then
    echo "kafka.sh: 127.0.0.1 port(s) $taken already in use, and not by a broker this checkout" \
      "started ($pidfile names none running): the test broker needs ports $port-$mtls_port. Stop" \
      "what listens there, or give this checkout other ports with HIRESTATE_TEST_KAFKA_PORT" \
      "(e.g. HIRESTATE_TEST_KAFKA_PORT=$((port + 100)))" >&2
    exit 1
  fi
  mkdir -p "$base/data" "$base/logs"
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$cport|g" -e "s|@SASL_PORT@|$sasl_port|g" \
    -e "s|@SSL_PORT@|$ssl_port|g" \
    -e "s|@SASL_SSL_PORT@|$sasl_ssl_port|g" -e "s|@MTLS_PORT@|$mtls_port|g" \
    -e "s|@TLS@|$tls|g" -e "s|@DATA@|$base/data|g" \
    "$here/server.properties.in" > "$base/server.properties"
  local jvm=(-Xms256m -Xmx1g -Dkafka.logs.dir="$base/logs"
             -Dlog4j2.configurationFile="$here/log4j2.properties")
  if [ ! -f "$base/data/meta.properties" ]; then
    local id
    id=$(java -cp "$base/lib/*" "${jvm[@]}" kafka.tools.StorageTool random-uuid)
    java -cp "$base/lib/*" "${jvm[@]}" kafka.tools.StorageTool format \
      -t "$id" -c "$base/server.properties" > "$base/logs/format.log" 2>&1 || {
      echo "kafka.sh: formatting the storage failed:" >&2; tail -20 "$base/logs/format.log" >&2; exit 1; }
  fi
  nohup java -cp "$base/lib/*" "${jvm[@]}" kafka.Kafka "$base/server.properties" \
    > "$base/logs/stdout.log" 2>&1 &
  echo $! > "$pidfile"
  local deadline=$((SECONDS + wait_secs))
  until ping; do
    if ! running; then
      echo "kafka.sh: the broker exited during start-up; last lines of its logs:" >&2
      tail -30 "$base/logs/stdout.log" "$base/logs/server.log" >&2 2>/dev/null || true
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "kafka.sh: the broker did not answer metadata requests within ${wait_secs}s (KAFKA_WAIT_SECS); log tail:" >&2
      tail -30 "$base/logs/server.log" >&2 2>/dev/null || true
      down
      exit 1
    fi
    sleep 1
  done
  if ! running; then
    echo "kafka.sh: something answered on $bootstrap, but the broker started here exited;" \
      "last lines of its logs:" >&2
    tail -30 "$base/logs/stdout.log" "$base/logs/server.log" >&2 2>/dev/null || true
    exit 1
  fi
  java -cp "$base/lib/*" "$here/Acls.java" "$bootstrap" || {
    echo "kafka.sh: granting the test ACLs (Acls.java) failed" >&2; down; exit 1; }
  config_sum > "$base/config.sum"
  echo "kafka.sh: broker up at $bootstrap (pid $(cat "$pidfile"))" >&2
}

down() {
  if running; then
    local pid; pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "kafka.sh: broker stopped" >&2
  fi
  rm -f "$pidfile"
}

with() {
  local started=0 status=0
  certificates
  if ! running || ! ping 2>/dev/null || ! current; then up fresh; started=1; fi
  KAFKA_BOOTSTRAP="$bootstrap" HIRESTATE_TEST_KAFKA_SASL_BOOTSTRAP="127.0.0.1:$sasl_port" \
    HIRESTATE_TEST_KAFKA_SSL_BOOTSTRAP="127.0.0.1:$ssl_port" \
    HIRESTATE_TEST_KAFKA_SASL_SSL_BOOTSTRAP="127.0.0.1:$sasl_ssl_port" \
    HIRESTATE_TEST_KAFKA_MTLS_BOOTSTRAP="127.0.0.1:$mtls_port" \
    HIRESTATE_TEST_KAFKA_TLS_DIR="$tls" "$@" || status=$?
  if [ "$started" = 1 ]; then down; fi
  return "$status"
}

case "${1:-}" in
  up) up ;;
  with) shift; with "$@" ;;
  down) down ;;
  status) ping ;;
  bootstrap) echo "$bootstrap" ;;
  *) echo "usage: kafka.sh up|down|status|bootstrap|with CMD..." >&2; exit 2 ;;
esac
