#!/usr/bin/env bash
# The local demo: PostgreSQL + Kafka + the relay + an order writer + a mail-service consumer.
#   scripts/demo.sh [--orders N] [--mode poll|wal] [--keep]
# The writer inserts each order and its `order-created` event in ONE transaction (every fifth one is
# rolled back, and never published); the relay publishes committed events to topic shop.orders.<time>; the
# consumer sends one "mail" per event, deduplicating with the inbox table. --keep leaves the services up.
set -euo pipefail
cd "$(dirname "$0")/.."
orders=20 mode=poll keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --orders) orders=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--orders N] [--mode poll|wal] [--keep]" >&2; exit 64 ;;
  esac
done

scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target outbox-relay outbox-relay-demo-consumer
scripts/pg.sh start >/dev/null
BROKERS=$(scripts/kafka.sh start 1)
[ "$keep" = 1 ] || trap 'scripts/kafka.sh stop; scripts/pg.sh stop' EXIT

scripts/pg.sh psql -c "DROP DATABASE IF EXISTS shop WITH (FORCE)" -c "CREATE DATABASE shop"
DB="postgresql://postgres:postgres@127.0.0.1:${PG_PORT:-54329}/shop"
build/outbox-relay migrate --db-url "$DB"
PGPASSWORD=postgres psql -X -q "$DB" -c "CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL)"
topic="shop.orders.$(date +%s)"  # a fresh topic per run, so the mailer sees only this run's orders

echo "== relay ($mode mode)"
build/outbox-relay --db-url "$DB" --kafka-brokers "$BROKERS" --mode "$mode" --topic-template "$topic" --log-level info &
relay=$!

echo "== mail service (consumer)"
expected=$((orders - orders / 5))
build/examples/outbox-relay-demo-consumer --brokers "$BROKERS" --db-url "$DB" --topic "$topic" --count "$expected" --idle 60 &
consumer=$!

echo "== writing $orders orders (every fifth transaction rolls back)"
for i in $(seq 1 "$orders"); do
  end=COMMIT; [ $((i % 5)) -eq 0 ] && end=ROLLBACK
  PGPASSWORD=postgres psql -X -q "$DB" <<SQL
BEGIN;
WITH o AS (INSERT INTO orders (customer, total) VALUES ('customer-$i', $i * 10) RETURNING id, customer, total)
INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, headers)
SELECT 'order', 'order-' || o.id, 'order-created',
       jsonb_build_object('order_id', o.id, 'customer', o.customer, 'total', o.total),
       jsonb_build_object('traceparent', '00-' || md5(o.id::text) || '-' || left(md5(o.customer), 16) || '-01')
FROM o;
$end;
SQL
done

wait "$consumer"
kill -TERM "$relay"; wait "$relay" || true
echo "== done: $expected committed orders mailed once each; rolled-back orders never published"
PGPASSWORD=postgres psql -X "$DB" -c "SELECT count(*) AS unsent FROM outbox" -c "SELECT count(*) AS mails FROM inbox"
