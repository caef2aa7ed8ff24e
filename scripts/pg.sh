#!/usr/bin/env bash
# Local PostgreSQL 15 for the demo, tests and bench: `pg.sh start|stop|restart|url|status|psql [args]`.
# initdb into $OUTBOX_RELAY_RUN/pg, loopback only, wal_level=logical (PG_WAL_LEVEL at init), password
# auth over TCP. PG_PORT and OUTBOX_RELAY_RUN select another instance.
# The superuser is "postgres" with password "postgres" (a throwaway local cluster).
source "$(dirname "$0")/common.sh"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGDATA_DIR="$OUTBOX_RELAY_RUN/pg/data"
SOCK_DIR="$OUTBOX_RELAY_RUN/pg/sock"
URL="postgresql://postgres:postgres@127.0.0.1:${PG_PORT}/postgres"

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

ensure_installed() {
  [ -x "$PGBIN/initdb" ] || "$(dirname "$0")/deps.sh"
}

init() {
  [ -f "$PGDATA_DIR/PG_VERSION" ] && return 0
  mkdir -p "$OUTBOX_RELAY_RUN/pg" "$SOCK_DIR"
  [ "$(id -u)" -ne 0 ] || chown -R postgres: "$OUTBOX_RELAY_RUN/pg"
  local pw; pw=$(mktemp); echo postgres > "$pw"; chmod 644 "$pw"
  as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --pwfile="$pw" -A scram-sha-256 --auth-local=trust \
    -E UTF8 --locale=C.UTF-8 >"$OUTBOX_RELAY_RUN/pg/initdb.log" 2>&1 || { cat "$OUTBOX_RELAY_RUN/pg/initdb.log" >&2; rm -f "$pw"; die "initdb failed"; }
  rm -f "$pw"
  cat >>"$PGDATA_DIR/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = ${PG_PORT}
unix_socket_directories = '${SOCK_DIR}'
wal_level = ${PG_WAL_LEVEL:-logical}
max_wal_senders = 20
max_replication_slots = 20
max_connections = 200
shared_buffers = 256MB
max_slot_wal_keep_size = 4GB
wal_sender_timeout = 60s
log_min_messages = warning
CONF
  cat >"$PGDATA_DIR/pg_hba.conf" <<HBA
local all all trust
local replication all trust
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
HBA
}

running() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; }

start() {
  ensure_installed; init
  if ! running; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$OUTBOX_RELAY_RUN/pg/server.log" -w -t 60 start >/dev/null \
      || { tail -20 "$OUTBOX_RELAY_RUN/pg/server.log" >&2; die "postgres failed to start"; }
  fi
  wait_for "postgres on port $PG_PORT" 60 "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
}

stop() {
  [ -f "$PGDATA_DIR/PG_VERSION" ] || return 0
  running && as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null || true
}

case "${1:-}" in
  start) start; echo "$URL" ;;
  stop) stop ;;
  restart) stop; start ;;
  url) echo "$URL" ;;
  status) running && echo running || { echo stopped; exit 1; } ;;
  psql) shift; PGPASSWORD=postgres exec "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$URL" "$@" ;;
  destroy) stop; rm -rf "$OUTBOX_RELAY_RUN/pg" ;;
  *) echo "usage: $0 start|stop|restart|url|status|psql|destroy" >&2; exit 64 ;;
esac
