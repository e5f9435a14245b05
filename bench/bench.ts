// `bun run bench`: TCP throughput (iperf3) and ping RTT through trellis between two namespaces,
// measured by ../shared/bench/peers.sh in the same run as the kernel veth baseline and userspace
// WireGuard (wireguard-go), so trellis is reported as a ratio to them.
//
// Flags: --systems "veth wggo node" (peers.sh names; "node" is trellis), --runs N (median of N), --dur S.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { initIdentity } from "../src/identity/identity.ts";

const ROOT = resolve(import.meta.dir, "..");
const PEERS = resolve(ROOT, "../shared/bench/peers.sh");
const { values } = parseArgs({ options: { systems: { type: "string", default: "veth wggo node" }, runs: { type: "string", default: "3" }, dur: { type: "string", default: "5" } } });
const runs = Number(values.runs);

if (!existsSync(PEERS)) {
  console.error(`bench: ${PEERS} not found (it lives in the shared folder beside the project)`);
  process.exit(1);
}
// wireguard-go for the comparison; iperf3 must not start its own service.
const want = ["wireguard-go", "wg"].filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
if (want.length) {
  spawnSync("sh", ["-c", "echo 'iperf3 iperf3/start_daemon boolean false' | debconf-set-selections; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wireguard-go wireguard-tools >/dev/null"], { stdio: "inherit" });
}

// Two identities and configs; b is also the seed (signalling + STUN) on the underlay.
const dir = mkdtempSync(join(tmpdir(), "trellis-bench-"));
const a = initIdentity(join(dir, "a")), b = initIdentity(join(dir, "b"));
const seed = "http://192.168.250.2:7443";
const conf = (me: string, ip: string, peer: string, relay: boolean) => `
[node]
name = "bench-${me}"
state_dir = "${join(dir, me)}"
ipv4 = "${ip}/24"
log_level = "warn"
[network]
seeds = ["${seed}"]
allow = ["${peer}"]
[tun]
name = "trellis-${me}"
[relay]
enabled = ${relay}
listen = "0.0.0.0:7443"
`;
writeFileSync(join(dir, "a.toml"), conf("a", "10.250.0.1", b.public.id, false));
writeFileSync(join(dir, "b.toml"), conf("b", "10.250.0.2", a.public.id, true));
const bun = join(ROOT, "node_modules/.bin/bun"), cli = join(ROOT, "src/cli/main.ts");

type Result = { system: string; mbps: number; rtt: number; extra: string };
const results: Result[] = [];
for (let i = 0; i < runs; i++) {
  const r = spawnSync("bash", [PEERS, ...values.systems!.split(/\s+/)], {
    encoding: "utf8",
    env: { ...process.env, DUR: values.dur, NODE_A_CMD: `${bun} ${cli} up --config ${join(dir, "a.toml")}`, NODE_B_CMD: `${bun} ${cli} up --config ${join(dir, "b.toml")}` },
    stdio: ["ignore", "pipe", "inherit"],
  });
  for (const line of r.stdout.split("\n")) {
    const m = /^RESULT system=(\S+) mbps=(\S+) rtt_ms=(\S+)(.*)$/.exec(line);
    if (!m) continue;
    console.log(`run ${i + 1}: ${line}`);
    results.push({ system: m[1] === "node" ? "trellis" : m[1], mbps: Number(m[2]), rtt: Number(m[3]), extra: m[4].trim() });
  }
}
rmSync(dir, { recursive: true, force: true });

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((x, y) => x - y);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
const systems = [...new Set(results.map((r) => r.system))];
const med = Object.fromEntries(systems.map((s) => [s, { mbps: median(results.filter((r) => r.system === s).map((r) => r.mbps)), rtt: median(results.filter((r) => r.system === s).map((r) => r.rtt)) }]));
console.log(`\nmedians of ${runs} run(s), iperf3 single TCP stream ${values.dur}s, ping -i 0.2:`);
console.log("system      Mbit/s    RTT ms   vs wggo (throughput)");
for (const s of systems) {
  const ratio = med.wggo && s !== "wggo" ? (med[s].mbps / med.wggo.mbps).toFixed(2) + "x" : "";
  console.log(`${s.padEnd(10)} ${med[s].mbps.toFixed(1).padStart(8)}  ${med[s].rtt.toFixed(3).padStart(8)}   ${ratio}`);
}
