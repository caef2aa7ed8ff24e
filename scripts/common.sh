#!/usr/bin/env bash
# Shared settings for the scripts that start the local services used by the demo, tests and bench.
# Everything lives under $OUTBOX_RELAY_RUN (default /tmp/outbox-relay-run) and listens on loopback only.
set -euo pipefail
OUTBOX_RELAY_RUN=${OUTBOX_RELAY_RUN:-/tmp/outbox-relay-run}
OUTBOX_RELAY_CACHE=${OUTBOX_RELAY_CACHE:-$HOME/.cache/outbox-relay}
PG_PORT=${PG_PORT:-54329}
KAFKA_VERSION=${KAFKA_VERSION:-3.9.1}
KAFKA_BASE_PORT=${KAFKA_BASE_PORT:-19092}
mkdir -p "$OUTBOX_RELAY_RUN" "$OUTBOX_RELAY_CACHE"

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "$*"; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds or the deadline passes.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}

# A port in the kernel's ephemeral range can be taken by an outgoing connection's local end just before
# a server binds it ("Address already in use": seen once in CI, a broker exiting at start). Where we may
# (root), the ports we serve on are reserved, so that the kernel hands them to no client.
reserve_ports() {
  local f=/proc/sys/net/ipv4/ip_local_reserved_ports cur
  [ -w "$f" ] || return 0
  cur=$(cat "$f" 2>/dev/null) || return 0
  (IFS=,; echo "${cur:+$cur,}$*") >"$f" 2>/dev/null || true
}
