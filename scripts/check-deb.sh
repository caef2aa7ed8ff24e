#!/usr/bin/env bash
# Builds the Debian package with CPack and checks it: `check-deb.sh [BUILD_DIR] [--install]`.
# Always: control fields (name, runtime Depends) and the file list (binary, SQL, unit, example config,
# Grafana dashboard). With --install (root, a disposable machine such as CI): dpkg -i, apt-get -f
# install for the dependencies, `outbox-relay --help`, `systemd-analyze verify` on the installed
# unit, then dpkg -r.
source "$(dirname "$0")/common.sh"
BUILD=${1:-build}
INSTALL=no
for a in "$@"; do [ "$a" = --install ] && INSTALL=yes; done
[ "${BUILD}" = --install ] && BUILD=build
[ -f "$BUILD/CPackConfig.cmake" ] || die "no $BUILD/CPackConfig.cmake: configure and build first"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$out" >"$out/cpack.log" 2>&1 || { cat "$out/cpack.log" >&2; die "cpack failed"; }
deb=$(ls "$out"/outbox-relay_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || die "cpack produced no .deb"
info=$(dpkg-deb --info "$deb")
contents=$(dpkg-deb --contents "$deb")
fail=0
expect() { grep -q -- "$2" <<<"$1" || { log "missing in package $3: $2"; fail=1; }; }
expect "$info" "Package: outbox-relay" info
for dep in libpqxx-6.4 librdkafka1 libspdlog1.10 libfmt9 libsystemd0 libcpp-httplib0.11; do expect "$info" "$dep" Depends; done
expect "$info" "conffiles" control
for f in ./usr/bin/outbox-relay ./usr/share/outbox-relay/sql/001_outbox.sql ./lib/systemd/system/outbox-relay.service \
         ./etc/outbox-relay/outbox-relay.conf.example ./usr/share/outbox-relay/grafana/outbox-relay.json; do
  expect "$contents" " $f\$" contents
done
[ "$fail" -eq 0 ] || die "package check failed ($deb)"
log "package ok: $(basename "$deb")"
if [ "$INSTALL" = yes ]; then
  [ "$(id -u)" -eq 0 ] || die "--install needs root"
  dpkg -i "$deb" || DEBIAN_FRONTEND=noninteractive apt-get install -y -f -q
  /usr/bin/outbox-relay --help >/dev/null || die "installed binary does not run"
  systemd-analyze verify /lib/systemd/system/outbox-relay.service || die "installed unit does not verify"
  dpkg -r outbox-relay >/dev/null
  log "installed, ran --help, verified the unit, removed"
fi
