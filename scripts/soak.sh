#!/usr/bin/env bash
# Long delivery-under-faults soak: every fault x mode (poll, WAL), the main faults also with --exactly-once
# (the eos- cases), against the real relay, its own PostgreSQL and a three-broker Kafka, then more rounds of the fault cases until the time is up; prints a table
# (events, lost, duplicates, reorderings, recovery, takeover) and exits non-zero on any promise violation.
#   scripts/soak.sh [--soak 75m] [--only sigkill,ha] [--skip poison-block] [--seed N]
# See tests/e2e/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- --soak 75m
exec tests/e2e/run "$@"
