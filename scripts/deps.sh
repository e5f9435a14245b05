#!/bin/sh
# Install what the demo, the tests and the benchmark use and a fresh Debian machine lacks:
# ping (iputils-ping), nft (nftables), iperf3, plus Bun and the packages via npm. Idempotent.
set -eu
cd "$(dirname "$0")/.."
need=""
command -v ping >/dev/null 2>&1 || need="$need iputils-ping"
command -v nft >/dev/null 2>&1 || need="$need nftables"
command -v iperf3 >/dev/null 2>&1 || need="$need iperf3"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
if [ -n "$need" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing$need; run as root (network namespaces need root anyway)" >&2
    exit 1
  fi
  echo "deps: installing$need" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
[ -x node_modules/.bin/bun ] || npm install --no-audit --no-fund
