#!/usr/bin/env bash
# Local Apache Kafka in KRaft mode, built from the broker's artifacts on Maven Central (never committed):
#   kafka.sh fetch                 download org.apache.kafka:kafka_2.13 and its runtime deps into the cache
#   kafka.sh start [N]             start an N-node cluster (default 1; each node is broker+controller)
#   kafka.sh stop                  stop every node;  kafka.sh destroy  kill every node, delete the data
#   kafka.sh stop-node I [--kill]  stop (or SIGKILL) node I;  kafka.sh start-node I  start it again
#   kafka.sh pause-node I / resume-node I   SIGSTOP / SIGCONT node I
#   kafka.sh brokers               print the bootstrap list;  kafka.sh wait  wait until all nodes serve
# Node I listens on 127.0.0.1:$((KAFKA_BASE_PORT+I-1)) (clients) and +100 (controller).
# KAFKA_VERSION (default 3.9.1) may be a 4.x as well (e.g. 4.1.0, where transaction.version 2, KIP-890, is
# on): the static controller.quorum.voters and `StorageTool format -t ID -c FILE` work on both. Only the
# broker and StorageTool are fetched: the admin tools of 4.x (org.apache.kafka.tools.*) are not.
source "$(dirname "$0")/common.sh"
KDIR="$OUTBOX_RELAY_RUN/kafka"
LIBS="$OUTBOX_RELAY_CACHE/kafka-$KAFKA_VERSION/libs"
KAFKA_HEAP=${KAFKA_HEAP:-}
KAFKA_MAJOR=${KAFKA_VERSION%%.*}
# Kafka 3.x logs through slf4j 1 to reload4j (log4j 1 syntax); 4.x dropped log4j 1 for log4j2 (and
# ZooKeeper, which is not used here anyway). Each node gets both configurations, the JVM the one its
# version reads.
if [ "$KAFKA_MAJOR" -ge 4 ]; then
  SLF4J_BINDING='<groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version>'
else
  SLF4J_BINDING='<groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version>'
fi
log_opts() { echo "-Dlog4j.configuration=file:$1/log4j.properties -Dlog4j2.configurationFile=$1/log4j2.properties"; }

fetch() {
  [ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] && return 0
  command -v mvn >/dev/null && command -v java >/dev/null || "$(dirname "$0")/deps.sh"
  local work; work=$(mktemp -d)
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.outbox-relay</groupId><artifactId>kafka-fetch</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency>$SLF4J_BINDING</dependency>
  </dependencies>
</project>
POM
  log "fetching kafka $KAFKA_VERSION from Maven Central into $LIBS"
  mkdir -p "$LIBS.tmp"
  (cd "$work" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$LIBS.tmp" >&2) || die "maven fetch failed"
  rm -rf "$LIBS"; mv "$LIBS.tmp" "$LIBS"; rm -rf "$work"
}

nodes() { cat "$KDIR/nodes" 2>/dev/null || echo 0; }
port() { echo $((KAFKA_BASE_PORT + $1 - 1)); }
cport() { echo $((KAFKA_BASE_PORT + 100 + $1 - 1)); }
brokers() {
  local n; n=$(nodes); local out=()
  for ((i = 1; i <= n; i++)); do out+=("127.0.0.1:$(port "$i")"); done
  (IFS=,; echo "${out[*]}")
}

configure() {
  local n=$1 voters=() rf isr
  for ((i = 1; i <= n; i++)); do voters+=("$i@127.0.0.1:$(cport "$i")"); done
  rf=$((n < 3 ? n : 3)); isr=$((n >= 3 ? 2 : 1))
  mkdir -p "$KDIR"; echo "$n" >"$KDIR/nodes"
  local cid; cid=$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  for ((i = 1; i <= n; i++)); do
    local d="$KDIR/node$i"; mkdir -p "$d"
    cat >"$d/server.properties" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=PLAINTEXT://127.0.0.1:$(port "$i"),CONTROLLER://127.0.0.1:$(cport "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(port "$i")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$d/data
num.partitions=3
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=4
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
log.retention.hours=24
PROPS
    cat >"$d/log4j.properties" <<L4J
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$d/broker.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=WARN
L4J
    cat >"$d/log4j2.properties" <<L4J2
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $d/broker.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
L4J2
    # shellcheck disable=SC2046
    java -cp "$LIBS/*" $(log_opts "$d") kafka.tools.StorageTool format \
      -t "$cid" -c "$d/server.properties" >"$d/format.log" 2>&1 || { cat "$d/format.log" >&2; die "format failed"; }
  done
}

pidof_node() { cat "$KDIR/node$1/pid" 2>/dev/null; }
alive() { local p; p=$(pidof_node "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

start_node() {
  local i=$1 d="$KDIR/node$1" n; n=$(nodes)
  alive "$i" && return 0
  local heap=${KAFKA_HEAP:-$([ "$n" -ge 3 ] && echo 384m || echo 768m)}
  nohup java -Xms128m -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    $(log_opts "$d") -cp "$LIBS/*" kafka.Kafka "$d/server.properties" \
    >"$d/stdout.log" 2>&1 </dev/null &
  echo $! >"$d/pid"
}

serving() { kcat -b "127.0.0.1:$(port "$1")" -L -m 2 2>/dev/null | grep -q "broker $1 at"; }
cluster_ready() {
  local n; n=$(nodes)
  local md; md=$(kcat -b "$(brokers)" -L -m 3 2>/dev/null) || return 1
  [ "$(grep -c ' at 127.0.0.1' <<<"$md")" -ge "$n" ]
}
# At start: every node answers for itself, and one that exited (a port taken just then) is started
# again. The cluster lists a node as soon as it registered, which can be just before it exits.
cluster_up() {
  local n i; n=$(nodes)
  for ((i = 1; i <= n; i++)); do alive "$i" || start_node "$i"; done
  cluster_ready || return 1
  for ((i = 1; i <= n; i++)); do serving "$i" || return 1; done
}
wait_all() {
  local n; n=$(nodes)
  if [ "${1:-}" = starting ]; then
    wait_for "kafka cluster of $n" 120 cluster_up
    return
  fi
  for ((i = 1; i <= n; i++)); do alive "$i" || die "kafka node $i is not running (see $KDIR/node$i/stdout.log)"; done
  wait_for "kafka cluster of $n" 120 cluster_ready
}

stop_node() {
  local i=$1 sig=${2:-TERM} p; p=$(pidof_node "$i") || return 0
  [ -n "$p" ] || return 0
  kill -s "$sig" "$p" 2>/dev/null || true
  kill -CONT "$p" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$p" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { kill -KILL "$p" 2>/dev/null || true; }
    sleep 0.1
  done
  rm -f "$KDIR/node$i/pid"
}

stop_all() { local n; n=$(nodes); for ((i = 1; i <= n; i++)); do stop_node "$i" "${1:-TERM}"; done; }

case "${1:-}" in
  fetch) fetch ;;
  start)
    want=${2:-1}
    command -v kcat >/dev/null || "$(dirname "$0")/deps.sh"
    fetch
    if [ "$(nodes)" != "$want" ]; then stop_all; rm -rf "$KDIR"; configure "$want"; fi
    for ((i = 1; i <= want; i++)); do reserve_ports "$(port "$i")" "$(cport "$i")"; start_node "$i"; done
    wait_all starting; brokers ;;
  stop) stop_all ;;
  destroy) stop_all KILL; rm -rf "$KDIR" ;;  # the data goes anyway: no controlled shutdown to wait for
  stop-node) stop_node "$2" "$([ "${3:-}" = --kill ] && echo KILL || echo TERM)" ;;
  start-node) start_node "$2"; wait_for "kafka node $2" 120 serving "$2" ;;
  pause-node) kill -STOP "$(pidof_node "$2")" ;;
  resume-node) kill -CONT "$(pidof_node "$2")" ;;
  brokers) brokers ;;
  wait) wait_all ;;
  *) echo "usage: $0 fetch|start [N]|stop|destroy|stop-node I [--kill]|start-node I|pause-node I|resume-node I|brokers|wait" >&2; exit 64 ;;
esac
