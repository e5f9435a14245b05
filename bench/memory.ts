// `bun bench/memory.ts`: what a node costs in memory. A relay (also the seed) in a namespace and N edge
// nodes in theirs, each linked to the relay; the relay's RSS and idle CPU at N = 0 and each step, then
// the cost per linked peer by least squares. Also an edge's RSS idle and while a TCP stream flows
// (a busy tether). Flags: --peers "0 8 16 24", --settle S (seconds to let links form).
import { readFileSync, rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { sh, TestNet } from "../test/lib/netns.ts";
import { TestNode, tempDir, waitFor } from "../test/lib/nodes.ts";

const { values } = parseArgs({ options: { peers: { type: "string", default: "0 8 16 24" }, settle: { type: "string", default: "8" } } });
const steps = values.peers!.split(/\s+/).map(Number);
const settleMs = Number(values.settle) * 1000;

function usage(pid: number): { ticks: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  return { ticks: Number(stat[11]) + Number(stat[12]), rssMb: rss / 1024 };
}

const dir = tempDir("bench-memory");
const net = new TestNet("mem");
const nodes: TestNode[] = [];
try {
  // Allow-list mode: the relay (also the seed, registered with itself) lists every edge; each edge lists it.
  net.addHost("relay");
  const seeds = [`http://${net.host("relay").ip}:7443`];
  const relay = new TestNode(net, { host: "relay", name: "relay", relay: true, seeds }, dir);
  const all: TestNode[] = [];
  for (let i = 0; i < Math.max(...steps); i++) {
    net.addHost(`e${i}`);
    all.push(new TestNode(net, { host: `e${i}`, name: `e${i}`, seeds, allow: [relay.id] }, dir));
  }
  relay.spec.allow = all.map((e) => e.id);
  relay.writeConfig();
  nodes.push(relay, ...all);
  await relay.start();
  const points: { n: number; rss: number; cpu: number }[] = [];
  const edges: TestNode[] = [];
  for (const n of steps) {
    while (edges.length < n) {
      const e = all[edges.length];
      edges.push(e);
      await e.start();
    }
    await waitFor(`${n} links at the relay`, () => relay.api("/v1/status").links.filter((l: any) => l.alive).length >= n, 120_000);
    await Bun.sleep(settleMs);
    const u0 = usage(relay.pid!);
    await Bun.sleep(5_000);
    const u1 = usage(relay.pid!);
    const cpu = (u1.ticks - u0.ticks) / 100 / 5;
    points.push({ n, rss: u1.rssMb, cpu });
    console.log(`relay with ${n} linked peers: RSS ${u1.rssMb.toFixed(1)} MB, idle CPU ${(cpu * 100).toFixed(1)}% of a core`);
  }
  if (points.length >= 2) {
    const slope = (ys: number[]) => {
      const xs = points.map((p) => p.n), mx = xs.reduce((s, x) => s + x, 0) / xs.length, my = ys.reduce((s, y) => s + y, 0) / ys.length;
      return xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
    };
    const perRss = slope(points.map((p) => p.rss)), perCpu = slope(points.map((p) => p.cpu));
    console.log(`per linked peer: ${perRss.toFixed(2)} MB RSS, ${(perCpu * 100).toFixed(2)}% of a core idle → 1,000 peers ≈ ${(points[0].rss + 1000 * perRss).toFixed(0)} MB`);
  }
  // A busy tether: two of the edges, allowed to each other, one TCP stream between them.
  if (edges.length >= 2) {
    const [a, b] = edges;
    const idle = usage(a.pid!).rssMb;
    a.spec.allow = [b.id, relay.id];
    b.spec.allow = [a.id, relay.id];
    a.spec.ipv4 = "100.64.0.2/24";
    b.spec.ipv4 = "100.64.0.3/24";
    for (const x of [a, b]) {
      x.writeConfig();
      await x.stop();
      await x.start();
    }
    await waitFor("a ↔ b session", () => a.api("/v1/status").peers?.find((p: any) => p.id === b.id && p.session && p.path === "direct"), 30_000);
    const before = usage(a.pid!).rssMb;
    const server = Bun.spawn(["ip", "netns", "exec", b.ns, "iperf3", "-s", "-1", "-B", "100.64.0.3"], { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(500);
    const client = Bun.spawn(["ip", "netns", "exec", a.ns, "iperf3", "-c", "100.64.0.3", "-t", "6"], { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(4_000);
    const busy = usage(a.pid!).rssMb;
    await client.exited;
    server.kill();
    console.log(`edge: RSS ${idle.toFixed(1)} MB idle with one relay link; ${before.toFixed(1)} MB with a direct tether too; ${busy.toFixed(1)} MB while a TCP stream flows`);
  }
  console.log(`(${sh(["nproc"]).trim()} cores; all nodes on this machine)`);
} finally {
  for (const n of nodes) if (n.pid) await n.stop().catch(() => {});
  net.destroy();
  rmSync(dir, { recursive: true, force: true });
}
