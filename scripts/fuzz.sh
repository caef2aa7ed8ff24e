#!/usr/bin/env bash
# Fuzzes the WAL-mode decoder (pgoutput messages, replication CopyData, relation cache, transaction
# assembly): `scripts/fuzz.sh [SECONDS]` (default 60). Builds tests/fuzz/fuzz_pgoutput.cpp with the
# decoder sources directly (clang++, -fsanitize=fuzzer,address,undefined) into build-fuzz/, independent
# of the main CMake build, then runs libFuzzer for SECONDS seeded from tests/fuzz/corpus/. New inputs go
# to build-fuzz/corpus/ (the checked-in seeds are never modified); a crash, sanitizer report or leak
# leaves build-fuzz/crash-* (or leak-*, timeout-*) and makes the script exit non-zero.
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
SOURCES=(
  "$ROOT/tests/fuzz/fuzz_pgoutput.cpp"
  "$ROOT/src/pg/lsn.cpp"
  "$ROOT/src/pg/pgoutput.cpp"
  "$ROOT/src/pg/wal_mapping.cpp"
  "$ROOT/src/pg/wal_queue.cpp"
  "$ROOT/src/core/routing.cpp"
)
echo "fuzz.sh: building $OUT/fuzz_pgoutput" >&2
"$CXX" -std=c++20 -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -Wno-unused-parameter -I"$ROOT/src" \
  "${SOURCES[@]}" -o "$OUT/fuzz_pgoutput"

echo "fuzz.sh: fuzzing for ${DURATION}s" >&2
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# -rss_limit_mb bounds memory (a decoder allocating from an unchecked length shows up here);
# -timeout flags inputs that take over 10 s; exit status is non-zero on any finding.
"$OUT/fuzz_pgoutput" -max_total_time="$DURATION" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$OUT/" "$OUT/corpus" "$ROOT/tests/fuzz/corpus"
