#!/usr/bin/env bash
# Fuzzes the WAL-mode decoder (pgoutput messages, replication CopyData, relation cache, transaction
# assembly): `scripts/fuzz.sh [SECONDS]` (default 60). Configures a separate CMake build in build-fuzz/
# with clang and OUTBOX_RELAY_FUZZ=ON (every library instrumented with -fsanitize=fuzzer-no-link,address,
# undefined) and builds tests/fuzz/fuzz_pgoutput.cpp against the relay_pg_decode library, then runs
# libFuzzer for SECONDS seeded from tests/fuzz/corpus/. New inputs go to build-fuzz/corpus/ (the
# checked-in seeds are never modified); a crash, sanitizer report or leak leaves build-fuzz/crash-* (or
# leak-*, timeout-*) and makes the script exit non-zero. FUZZ_RUNS=N stops after N executions instead;
# FUZZ_MAX_LEN (65536) bounds an input's size (a smaller bound runs many more executions per second).
set -euo pipefail
DURATION=${1:-60}
case "$DURATION" in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 64 ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/build-fuzz"
CXX=${FUZZ_CXX:-clang++}

if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "fuzz.sh: $CXX not found; installing clang" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get install -y --no-install-recommends clang libclang-rt-14-dev >&2
fi

mkdir -p "$OUT/corpus"
echo "fuzz.sh: building $OUT/tests/fuzz_pgoutput" >&2
cmake -S "$ROOT" -B "$OUT" -G Ninja -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DOUTBOX_RELAY_FUZZ=ON >/dev/null
cmake --build "$OUT" --target fuzz_pgoutput >&2

echo "fuzz.sh: fuzzing for ${DURATION}s" >&2
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# -rss_limit_mb bounds memory (a decoder allocating from an unchecked length shows up here);
# -timeout flags inputs that take over 10 s; exit status is non-zero on any finding.
"$OUT/tests/fuzz_pgoutput" -max_total_time="$DURATION" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -timeout=10 \
  -rss_limit_mb=2048 -max_len="${FUZZ_MAX_LEN:-65536}" -print_final_stats=1 -artifact_prefix="$OUT/" \
  "$OUT/corpus" "$ROOT/tests/fuzz/corpus"
