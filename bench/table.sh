#!/usr/bin/env bash
# table.sh - the benchmark table, with ../shared/bench/peers.sh's own namespaces and systems (its
# functions are sourced, its main is not): for each system, fresh namespaces, then
#   TCP one stream and four streams (iperf3, $DUR s), ping idle and under the four-stream load,
#   UDP: the highest offered rate (1300-byte datagrams) received with at most 1% loss (the grid, then
#   the gap past the last rate that held halved twice; a rate holds if one of two runs does),
#   daemon CPU seconds per GB moved during the one-stream test.
# Prints one line per system:
#   TABLE system=<name> tcp1=<Mbit/s> tcp4=<Mbit/s> udp=<Mbit/s> rtt_idle=<ms> rtt_load=<ms> cpu_s_gb=<s>
# Usage: table.sh PEERS_SH system...   (NODE_A_CMD / NODE_B_CMD as for peers.sh's "node")
# NODE_A_STATUS: a command printing node a's status JSON (`trellis status --json --config ...`), run in
# pb-a. With it, "node" is measured only once a reaches b over their own UDP link (fast channel up):
# ping answers ~5 s earlier over the relay's WebSocket fallback, and those samples are not the link's.
set -u
PEERS=$1; shift
# shellcheck disable=SC1090  # the shared script's functions, without its main section
source <(sed '/^# -* main/,$d' "$PEERS")
# Sourced through a pipe, peers.sh's BASH_SOURCE names the pipe, not its folder: point wggo2 at the
# current wireguard-go beside it ourselves.
sys_wggo2() { wg_with "$(dirname "$(readlink -f "$PEERS")")/wireguard-go-modern/wireguard-go"; }
set +e
UDP_RATES=${UDP_RATES:-"50 100 200 300 400 500 600 800 1000 1500 2000"}

pids_of() { local f; for f in "$RUN"/*."$1".pid; do cat "$f"; done; }
sumticks() { local s=0 p; for p in "$@"; do s=$((s+$(ticks "$p"))); done; echo $s; }
rtt_of() { awk -F/ '/^rtt|^round-trip/{print $5}'; }

# link_up: a's status shows the peer holding TARGET on the direct path with an underlay address, over
# a UDP link (not the WebSocket) whose fast channel is up.
link_up() {
  nsa sh -c "$NODE_A_STATUS" 2>/dev/null | jq -e --arg t "$TARGET" '
    [.peers[] | select(.ipv4 == $t and .path == "direct" and .underlay != null) | .id] as $ids
    | [.links[] | select((.peer | IN($ids[])) and .transport == "udp" and .alive and .fast.state? == "up")]
    | length > 0' >/dev/null 2>&1
}
# wait_link SECONDS: wait for link_up; a clear error when it never comes.
wait_link() { local t=$1 i
  for ((i=0; i<t*4; i++)); do link_up && { log "node: direct link up (${i}/4 s after ping answered)"; return 0; }; sleep 0.25; done
  log "node: no direct UDP link with fast channel up to $TARGET after ${t}s; a's view:"
  nsa sh -c "$NODE_A_STATUS" 2>&1 | jq -c '{peers: [.peers[] | {ipv4, path, link, underlay}], links: [.links[] | {transport, alive, fast: .fast.state?}]}' >&2 \
    || nsa sh -c "$NODE_A_STATUS" 2>&1 | tail -3 >&2
  return 1
}

# udp_ok RATE: UDP at RATE Mbit/s (1300-byte datagrams, 3 s); true when a run lost at most 1% (up to
# UDP_TRIES runs, 2: one hiccup of a shared machine does not end the sweep, for every system alike),
# and then udp is the rate received if it is the best so far.
udp_ok() {
  local json got lost try
  for ((try=1; try<=${UDP_TRIES:-2}; try++)); do
    json=$(nsa iperf3 -c "$TARGET" -u -b "${1}M" -l 1300 -t 3 -J 2>&1)
    got=$(echo "$json" | jq -r '(.end.sum.bits_per_second/1e6*10|round)/10' 2>/dev/null)
    lost=$(echo "$json" | jq -r '.end.sum.lost_percent*100|round/100' 2>/dev/null)
    log "udp ${1}M: ${got:-?} Mbit/s, ${lost:-?}% lost"
    awk -v l="${lost:-100}" 'BEGIN{ exit !(l <= 1) }' || continue
    awk -v g="${got:-0}" -v u="$udp" 'BEGIN{ exit !(g > u) }' && udp=$got
    return 0
  done
  return 1
}

table() {
  local name=$1 json hz t0 t1 bytes tcp1 tcp4 udp=0 rate got lost rtt_idle rtt_load cpu
  if ! wait_up 20; then echo "TABLE system=$name tcp1=FAIL"; return 1; fi
  if [ "$name" = node ] && [ -n "${NODE_A_STATUS:-}" ] && ! wait_link 30; then
    echo "TABLE system=$name tcp1=FAIL note=no_direct_link"; return 1
  fi
  bg_b iperf3-server iperf3 -s -B "$TARGET"
  sleep 0.5
  hz=$(getconf CLK_TCK)
  local pids; pids=$(pids_of a; pids_of b)
  # shellcheck disable=SC2086
  t0=$(sumticks $pids)
  json=$(nsa iperf3 -c "$TARGET" -t "$DUR" -J 2>&1)
  # shellcheck disable=SC2086
  t1=$(sumticks $pids)
  tcp1=$(echo "$json" | jq -r '(.end.sum_received.bits_per_second/1e6*10|round)/10' 2>/dev/null)
  bytes=$(echo "$json" | jq -r '.end.sum_received.bytes' 2>/dev/null)
  cpu=$(awk -v d=$((t1-t0)) -v hz="$hz" -v b="${bytes:-0}" 'BEGIN{ if (b > 0) printf "%.2f", d/hz/(b/1e9); else print "n/a" }')
  rtt_idle=$(nsa ping -c 20 -i 0.2 -q "$TARGET" 2>&1 | rtt_of)
  nsa ping -c $((DUR * 5)) -i 0.2 -q "$TARGET" >"$RUN/ping-load.out" 2>&1 &
  local pinger=$!
  json=$(nsa iperf3 -c "$TARGET" -t "$DUR" -P 4 -J 2>&1)
  wait $pinger
  rtt_load=$(rtt_of <"$RUN/ping-load.out")
  tcp4=$(echo "$json" | jq -r '(.end.sum_received.bits_per_second/1e6*10|round)/10' 2>/dev/null)
  # The grid's steps are up to 50% apart (200 passing and 300 failing said "200" whether 210 or 290
  # held): then halve the gap between the last rate that held and the first that did not, UDP_BISECT
  # times (2: within an eighth of the step), the same for every system.
  local pass=0 fail=0 i
  for rate in $UDP_RATES; do
    if udp_ok "$rate"; then pass=$rate; else fail=$rate; break; fi
  done
  for ((i=0; i<${UDP_BISECT:-2} && fail>0; i++)); do
    rate=$(( (pass + fail) / 2 ))
    if udp_ok "$rate"; then pass=$rate; else fail=$rate; fi
  done
  echo "TABLE system=$name tcp1=${tcp1:-FAIL} tcp4=${tcp4:-FAIL} udp=$udp rtt_idle=${rtt_idle:-FAIL} rtt_load=${rtt_load:-FAIL} cpu_s_gb=$cpu"
}

[ "$(id -u)" = 0 ] || { echo "need root" >&2; exit 1; }
for s in "$@"; do
  declare -F "sys_$s" >/dev/null || { log "unknown system $s"; continue; }
  log "=== $s ==="
  setup_ns
  TARGET=$OB
  if "sys_$s"; then table "$s"; else echo "TABLE system=$s tcp1=FAIL note=setup_failed"; fi
  kill_pids; teardown_ns
done
