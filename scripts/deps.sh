#!/bin/sh
# Install what the demo, the tests and the benchmark use and a fresh Debian machine lacks:
# ping (iputils-ping), nft (nftables), iperf3, dig (bind9-dnsutils: the exit DNS e2e test), python3 (crafted IPv6 fragments in test/hostile), headless chromium and firefox-esr (the page's e2e test); for the shipping tests systemd-analyze (systemd),
# the shell linter, and qemu-aarch64-static with an arm64 libc to run the arm64 binary. Idempotent.
set -eu
cd "$(dirname "$0")/.."
need=""
command -v ping >/dev/null 2>&1 || need="$need iputils-ping"
command -v nft >/dev/null 2>&1 || need="$need nftables"
command -v iperf3 >/dev/null 2>&1 || need="$need iperf3"
command -v dig >/dev/null 2>&1 || need="$need bind9-dnsutils"
command -v python3 >/dev/null 2>&1 || need="$need python3"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v firefox-esr >/dev/null 2>&1 || command -v firefox >/dev/null 2>&1 || need="$need firefox-esr"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v ss >/dev/null 2>&1 || need="$need iproute2"
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
command -v shellcheck >/dev/null 2>&1 || need="$need shellcheck"
command -v qemu-aarch64-static >/dev/null 2>&1 || need="$need qemu-user-static"
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || need="$need libc6-arm64-cross"
if [ -n "$need" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing$need; run as root (network namespaces need root anyway)" >&2
    exit 1
  fi
  echo "deps: installing$need" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # iperf3 must not start a service of its own.
  echo 'iperf3 iperf3/start_daemon boolean false' | debconf-set-selections 2>/dev/null || true
  # shellcheck disable=SC2086  # $need is a list of package names
  apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
[ -x node_modules/.bin/bun ] || npm install --no-audit --no-fund
