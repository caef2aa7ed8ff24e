#!/usr/bin/env bash
# Installs the Debian packages the build, tests, demo and bench need. Idempotent; skips apt when all
# packages are present already.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config git
      libpqxx-dev libpq-dev librdkafka-dev libspdlog-dev libfmt-dev libcli11-dev doctest-dev
      libcpp-httplib-dev nlohmann-json3-dev libsystemd-dev systemd
      postgresql-15 postgresql-contrib kcat maven openjdk-17-jre-headless
      clang clang-format clang-tidy libclang-rt-14-dev valgrind iproute2 procps curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
