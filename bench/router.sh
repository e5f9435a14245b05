#!/bin/sh
# Figures for "trellis on a router" (README): failover times of subnet routers (router death and LAN
# failure, with and without SNAT), exit_node = "auto" failover, and throughput through an exit node
# against the tunnel alone and the exit's own uplink. They come from the e2e tests, which log them;
# this runs those two files RUNS times (default 3; root, network namespaces) and prints those lines
# with the load average at each run's start. On a shared machine the figures move with the load.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-3}
i=0
while [ "$i" -lt "$runs" ]; do
  i=$((i + 1))
  echo "run $i of $runs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  ./node_modules/.bin/bun test test/e2e/routes.test.ts test/e2e/exit.test.ts 2>&1 |
    grep -E 'gap|moved|throughput|^ *[0-9]+ (pass|fail)$' || true
done
