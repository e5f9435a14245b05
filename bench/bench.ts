// `bun run bench`: trellis beside the kernel veth and userspace WireGuard — Debian's 2022 wireguard-go
// (`wggo`) and the current upstream one with segmentation offloads (`wggo2`, the anchor) — all set up
// by ../shared/bench/peers.sh's own functions between the same two namespaces in the same run
// (bench/table.sh), then trellis through a relay. Prints medians and the ratio of each figure to
// wggo2's (and to wggo's, for the record).
//
// Columns: TCP one stream and four streams (iperf3), UDP received with at most 1% loss (1300-byte
// datagrams), ping RTT idle and under the four-stream load, daemon CPU seconds per GB moved (both ends).
// Relayed: a → relay → b with direct blocked (one TCP stream), and the relay's CPU per Gbit/s forwarded.
//
// Flags: --systems "veth wggo wggo2 node" (peers.sh names; "node" is trellis), --runs N, --dur S, --relay (only
// the relayed figure) / --no-relay.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { initIdentity } from "../src/identity/identity.ts";
import { sh, TestNet } from "../test/lib/netns.ts";
import { TestNode, waitFor } from "../test/lib/nodes.ts";

const ROOT = resolve(import.meta.dir, "..");
const PEERS = process.env.PEERS_SH ?? resolve(ROOT, "../shared/bench/peers.sh"); // PEERS_SH: from a worktree
const { values } = parseArgs({
  options: {
    systems: { type: "string", default: "veth wggo wggo2 node" },
    runs: { type: "string", default: "3" },
    dur: { type: "string", default: "5" },
    relay: { type: "boolean", default: false },
    "no-relay": { type: "boolean", default: false },
  },
});
const runs = Number(values.runs), dur = Number(values.dur);
const bun = join(ROOT, "node_modules/.bin/bun"), cli = join(ROOT, "src/cli/main.ts");

if (!existsSync(PEERS)) {
  console.error(`bench: ${PEERS} not found (it lives in the shared folder beside the project)`);
  process.exit(1);
}
// wireguard-go for the comparison; iperf3 must not start its own service.
const want = ["wireguard-go", "wg"].filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
if (want.length) {
  spawnSync("sh", ["-c", "echo 'iperf3 iperf3/start_daemon boolean false' | debconf-set-selections; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wireguard-go wireguard-tools >/dev/null"], { stdio: "inherit" });
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((x, y) => x - y);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");

const COLUMNS = ["tcp1", "tcp4", "udp", "rtt_idle", "rtt_load", "cpu_s_gb"] as const;
type Row = Record<(typeof COLUMNS)[number], number>;

function sideBySide(): void {
  // Two identities and configs; b is also the seed (signalling + STUN) on the underlay.
  const dir = mkdtempSync(join(tmpdir(), "trellis-bench-"));
  const a = initIdentity(join(dir, "a")), b = initIdentity(join(dir, "b"));
  const conf = (me: string, ip: string, peer: string, relay: boolean) => `
[node]
name = "bench-${me}"
state_dir = "${join(dir, me)}"
ipv4 = "${ip}/24"
log_level = "warn"
[network]
seeds = ["http://192.168.250.2:7443"]
allow = ["${peer}"]
[tun]
name = "trellis-${me}"
[relay]
enabled = ${relay}
listen = "0.0.0.0:7443"
`;
  writeFileSync(join(dir, "a.toml"), conf("a", "10.250.0.1", b.public.id, false));
  writeFileSync(join(dir, "b.toml"), conf("b", "10.250.0.2", a.public.id, true));
  const rows = new Map<string, Row[]>();
  for (let i = 0; i < runs; i++) {
    const r = spawnSync("bash", [join(ROOT, "bench/table.sh"), PEERS, ...values.systems!.split(/\s+/)], {
      encoding: "utf8",
      env: { ...process.env, DUR: String(dur), NODE_A_CMD: `${bun} ${cli} up --config ${join(dir, "a.toml")}`, NODE_B_CMD: `${bun} ${cli} up --config ${join(dir, "b.toml")}`,
        // table.sh measures trellis only once a's status shows the direct UDP link (not the relay's fallback).
        NODE_A_STATUS: `${bun} ${cli} status --json --config ${join(dir, "a.toml")}` },
      stdio: ["ignore", "pipe", "inherit"],
    });
    for (const line of r.stdout.split("\n")) {
      if (!line.startsWith("TABLE ")) continue;
      console.log(`run ${i + 1}: ${line}`);
      const kv = Object.fromEntries(line.slice(6).split(" ").map((p) => p.split("=")));
      const system = kv.system === "node" ? "trellis" : kv.system;
      const row = Object.fromEntries(COLUMNS.map((c) => [c, Number(kv[c])])) as Row;
      rows.set(system, [...(rows.get(system) ?? []), row]);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const med = new Map([...rows].map(([s, rs]) => [s, Object.fromEntries(COLUMNS.map((c) => [c, median(rs.map((r) => r[c]))])) as Row]));
  console.log(`\nmedians of ${runs} run(s); iperf3 ${dur} s; UDP = highest rate received with ≤ 1% loss (grid, then bisected twice; a rate holds if one of 2 runs does); RTT by ping -i 0.2; CPU = both daemons`);
  console.log("system     TCP×1 Mbit/s  TCP×4 Mbit/s  UDP Mbit/s  RTT idle ms  RTT load ms  CPU s/GB");
  for (const [s, m] of med) {
    console.log(`${s.padEnd(10)} ${fmt(m.tcp1).padStart(12)}  ${fmt(m.tcp4).padStart(12)}  ${fmt(m.udp).padStart(10)}  ${fmt(m.rtt_idle, 3).padStart(11)}  ${fmt(m.rtt_load, 3).padStart(11)}  ${fmt(m.cpu_s_gb, 2).padStart(8)}`);
  }
  // Ratios against the anchor (current wireguard-go) first, then Debian's 2022 build.
  for (const anchor of ["wggo2", "wggo"]) {
    const wg = med.get(anchor);
    if (!wg) continue;
    for (const [s, m] of med) {
      if (s.startsWith("wggo") || s === "veth") continue;
      const r = (c: (typeof COLUMNS)[number]) => fmt(m[c] / wg[c], 2) + "x";
      console.log(`${s} ÷ ${anchor}:  TCP×1 ${r("tcp1")}  TCP×4 ${r("tcp4")}  UDP ${r("udp")}  RTT idle ${r("rtt_idle")}  RTT load ${r("rtt_load")}  CPU/GB ${r("cpu_s_gb")}`);
    }
  }
  const veth = med.get("veth");
  if (veth) for (const [s, m] of med) if (s !== "veth") console.log(`${s}: RTT added over the bare veth ${fmt(m.rtt_idle - veth.rtt_idle, 3)} ms`);
}

/** a → relay → b, direct blocked at the router: one TCP stream, and the relay's CPU while it forwards. */
async function relayed(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "trellis-bench-relay-"));
  const net = new TestNet("bench");
  const nodes: TestNode[] = [];
  try {
    for (const h of ["relay", "a", "b"]) net.addHost(h);
    net.block("a", "b");
    const seeds = [`http://${net.host("relay").ip}:7443`];
    // The relay is the seed too, and registers with itself so the edges can signal it.
    // BENCH_RELAY_PROF=DIR: the three nodes run under `bun --cpu-prof-md`, each writing its profile to
    // DIR/<name> (made world-writable: the node drops privileges).
    const prof = process.env.BENCH_RELAY_PROF;
    const bunFlags = (name: string) => {
      if (!prof) return undefined;
      sh(["sh", "-c", `mkdir -p '${prof}/${name}' && chmod 777 '${prof}' '${prof}/${name}'`]);
      return ["--cpu-prof-md", `--cpu-prof-dir=${prof}/${name}`];
    };
    const relay = new TestNode(net, { host: "relay", name: "relay", relay: true, seeds, bunFlags: bunFlags("relay") }, dir);
    const a = new TestNode(net, { host: "a", name: "a", ipv4: "100.64.0.2/24", seeds, bunFlags: bunFlags("a") }, dir);
    const b = new TestNode(net, { host: "b", name: "b", ipv4: "100.64.0.3/24", seeds, bunFlags: bunFlags("b") }, dir);
    // Allow-list mode: each lists the others (a relay carries only for members or the nodes it lists).
    a.spec.allow = [b.id, relay.id];
    b.spec.allow = [a.id, relay.id];
    relay.spec.allow = [a.id, b.id];
    for (const x of [relay, a, b]) x.writeConfig();
    nodes.push(relay, a, b);
    await relay.start();
    await Promise.all([a.start(), b.start()]);
    await waitFor("a relayed session", () => a.api("/v1/status").peers?.find((p: any) => p.id === b.id && p.session && String(p.path).startsWith("relay")), 30_000).catch((e) => {
      throw new Error(`${e.message}\na's status: ${JSON.stringify(a.api("/v1/status").peers)}\na's log:\n${a.tail(15)}`);
    });
    const server = Bun.spawn(["ip", "netns", "exec", b.ns, "iperf3", "-s", "-1", "-B", "100.64.0.3"], { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(500);
    const ticks = () => readFileSync(`/proc/${relay.pid}/stat`, "utf8").split(") ")[1].split(" ").slice(11, 13).reduce((s, x) => s + Number(x), 0);
    const hz = Number(sh(["getconf", "CLK_TCK"]).trim());
    const ticksOf = (n: TestNode) => readFileSync(`/proc/${n.pid}/stat`, "utf8").split(") ")[1].split(" ").slice(11, 13).reduce((s, x) => s + Number(x), 0);
    const e0 = [a, b].map(ticksOf);
    const t0 = ticks(), w0 = performance.now();
    const json = JSON.parse(sh(["ip", "netns", "exec", a.ns, "iperf3", "-c", "100.64.0.3", "-t", String(dur), "-J"]));
    const cpu = (ticks() - t0) / hz / ((performance.now() - w0) / 1000);
    const [ca, cb] = [a, b].map((n, i) => (ticksOf(n) - e0[i]) / hz / ((performance.now() - w0) / 1000));
    server.kill();
    // Where the relay's frames went: the fast channel, or the data channel (frames it refused).
    for (const l of relay.api("/v1/status").links ?? []) {
      const f = l.fast ?? {};
      const who = l.peer === a.id ? "a" : l.peer === b.id ? "b" : l.peer;
      console.log(`relay link ${who}: fast ${f.state} mtu ${f.mtu} tx ${f.txPackets} (gso ${f.txGsoDatagrams} in ${f.txGsoSends}) refused ${JSON.stringify(f.txRefused ?? null)} rx ${f.rxPackets} (gro ${f.rxGroDatagrams} in ${f.rxGroReads}) rejected ${f.rxRejected}`);
    }
    const mbps = json.end.sum_received.bits_per_second / 1e6;
    console.log(`\nrelayed (a → relay → b, direct blocked, one TCP stream ${dur} s): ${fmt(mbps)} Mbit/s; relay CPU ${fmt(cpu * 100, 0)}% of a core = ${fmt(cpu / (mbps / 1000), 2)} cores per Gbit/s forwarded; a ${fmt(ca * 100, 0)}%, b ${fmt(cb * 100, 0)}%; load ${readFileSync("/proc/loadavg", "utf8").split(" ")[0]}`);
  } finally {
    for (const n of nodes) await n.stop();
    net.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!values.relay) sideBySide();
if (!values["no-relay"]) await relayed();
