#!/usr/bin/env bash
# Events a WAL-mode slot re-sends after a clean (fast) restart of PostgreSQL, per server version:
#   bench/restart-resend.sh [VERSION ...]       (default: 15 18; Kafka: KAFKA_BROKERS or a local one)
# 1000 events are published and confirmed (the relay exits when idle), the server restarts, the relay
# runs again; the topic then holds 1000 + the re-sent records. Own PostgreSQL per version under
# $OUTBOX_RELAY_RUN (default /tmp/outbox-relay-resend) on PG_PORT (55430, +1 per version).
set -euo pipefail
cd "$(dirname "$0")/.."
export OUTBOX_RELAY_RUN=${OUTBOX_RELAY_RUN:-/tmp/outbox-relay-resend}
BIN=${OUTBOX_RELAY_BINARY:-build/outbox-relay}
brokers=${KAFKA_BROKERS:-}
if [ -z "$brokers" ]; then
  export KAFKA_BASE_PORT=${KAFKA_BASE_PORT:-29870}
  scripts/kafka.sh start 1 >/dev/null
  trap 'scripts/kafka.sh destroy >/dev/null' EXIT
  brokers=$(scripts/kafka.sh brokers)
fi
port=${PG_PORT:-55430}
for version in "${@:-15 18}"; do
  for v in $version; do
    export PG_VERSION=$v PG_PORT=$port
    port=$((port + 1))
    scripts/pg.sh start >/dev/null
    url="postgresql://postgres:postgres@127.0.0.1:$PG_PORT/resend"
    scripts/pg.sh psql -c "DROP DATABASE IF EXISTS resend WITH (FORCE)" -c "CREATE DATABASE resend"
    "$BIN" migrate --db-url "$url" >/dev/null
    topic="resend.$v.$RANDOM"
    relay=("$BIN" --db-url "$url" --kafka-brokers "$brokers" --mode wal --slot resend --topic-template "$topic"
           --exit-when-idle --http-addr off --log-level error)
    "${relay[@]}"
    PGPASSWORD=postgres psql -Xq "$url" -c "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) SELECT 'o', 'k' || (g % 10), 'e', '{}' FROM generate_series(1, 1000) g"
    "${relay[@]}"
    lsn() { PGPASSWORD=postgres psql -XAt "$url" -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'resend'"; }
    before=$(lsn)
    scripts/pg.sh restart >/dev/null
    after=$(lsn)
    "${relay[@]}"
    n=$(kcat -b "$brokers" -C -t "$topic" -e -q -f '%k\n' 2>/dev/null | wc -l)
    echo "PostgreSQL $v: slot confirmed $before before the restart, $after after; $n records for 1000 events (re-sent $((n - 1000)))"
    scripts/pg.sh destroy
  done
done
