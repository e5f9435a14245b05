// `bun bench/peers-load.ts` (root: namespaces): what a relay costs per linked peer, with many of them.
// A real relay process (also the seed, `trellis up` as in production) in a namespace, and N emulated
// peers: whole nodes with memory TUNs, many per process (bench/peers-worker.ts), each process in its own
// namespace (a seed lets one source address hold 64 sockets and register 5 a second), with real werift
// ICE/DTLS/SCTP links, signed signals through the seed and the fast channel. For each N: the relay's RSS,
// its CPU over an idle window, the per-peer slope (least squares), and the harness's own CPU (it shares
// the machine's cores with the relay: where it saturates them, the harness is the limit). Then one real
// edge process's idle RSS. Flags: --peers "10 100 300" (cumulative steps), --per 50 (peers per worker
// process), --window 10 (seconds of idle CPU), --settle 10 (seconds after the last link came up),
// --smol (the relay runs under `bun --smol`), --nice 10 (the peer processes' niceness), --keep DIR (the relay's
// log, at debug, kept in DIR), --wait S (how long each step waits for its links; progress every 15 s), --prof DIR (the relay's CPU profile, bun --cpu-prof-md, and
// its JavaScript heap by object type at each step, bench/heap-preload.ts, go to DIR; the CPU profiler keeps
// objects alive, e.g. every API response: its RSS is not the relay's), --idle-prof DIR (JavaScriptCore's sampling
// profile of the relay and of one process of peers over the last step's idle window only, without the set-up:
// self samples by function, written to DIR/relay and DIR/members when they stop), --heap DIR (the heap statistics alone,
// no profiler: what to read memory from), --keep-root (for
// TRELLIS_BIN under qemu-aarch64-static, whose own threads keep root after the privilege drop), --failover
// (with the last step's peers still attached: a second relay and two edges that reach each other only
// through the relays; the first packet's time from one edge to the other, then the gap in a 20 ms ping
// when the relay carrying it is killed), --restart (after the last step the relay restarts, same identity
// and state: every member comes back to it at once; links alive every 15 s until all are, or --wait).
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { spawn, type ChildProcess } from "node:child_process";
import { sh, TestNet } from "../test/lib/netns.ts";
import { BUN, ROOT, TestNode, tempDir, waitFor } from "../test/lib/nodes.ts";
import { benchIdentity } from "./peers-ids.ts";

const { values } = parseArgs({
  options: {
    peers: { type: "string", default: "10 100 300" },
    per: { type: "string", default: "50" },
    window: { type: "string", default: "10" },
    settle: { type: "string", default: "10" },
    smol: { type: "boolean", default: false },
    /** Relay and edge keep root (under qemu-user a thread of qemu's own keeps root after the drop, which trellis refuses). */
    "keep-root": { type: "boolean", default: false },
    /** A directory for the relay's CPU profile (markdown, written when it stops) and heap statistics per step. */
    prof: { type: "string" },
    /** A directory for the relay's heap statistics per step, without the CPU profiler (which keeps objects alive). */
    heap: { type: "string" },
    /** A directory for sampling profiles of the relay and one peer process over the last step's idle window. */
    "idle-prof": { type: "string" },
    failover: { type: "boolean", default: false },
    /** After the last step: restart the relay (same identity and state) and time its members coming back. */
    restart: { type: "boolean", default: false },
    /** Keep the relay's log (at debug) and the relay's RSS/CPU over the set-up in DIR. */
    keep: { type: "string" },
    /** Niceness of the peer processes (they yield to the relay). */
    nice: { type: "string", default: "10" },
    /** Seconds to wait for each step's links (default 60 + 0.4 per peer). */
    wait: { type: "string" },
  },
});
/** Ends the run early, on purpose. */
class Done extends Error {}
const steps = values.peers!.split(/\s+/).filter(Boolean).map(Number);
const per = Number(values.per), windowS = Number(values.window), settleMs = Number(values.settle) * 1000;
const max = Math.max(...steps);

/**
 * CPU ticks (user + system, 1/100 s), RSS and its anonymous part of a process. The rest of RSS is file
 * pages (the executable's code: the node gives back the untouched ones 20 s after start, src/node/trim.ts),
 * so the anonymous part is what peers cost.
 */
function usage(pid: number): { ticks: number; rssMb: number; anonMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { ticks: Number(stat[11]) + Number(stat[12]), rssMb: kb("VmRSS") / 1024, anonMb: kb("RssAnon") / 1024 };
}
/** Summed ticks of processes (`ip netns exec` execs in place: the spawned pid is bun's). */
const ticksOf = (pids: number[]) => pids.reduce((s, p) => s + (existsSync(`/proc/${p}`) ? usage(p).ticks : 0), 0);
/** Ask the relay (bench/heap-preload.ts) for its heap statistics and keep them. */
function heapSnapshot(pid: number, from: string, to: string): void {
  rmSync(from, { force: true });
  rmSync(`${from}.snapshot`, { force: true });
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 100 && !existsSync(from); i++) Bun.sleepSync(100);
  Bun.sleepSync(process.env.TRELLIS_HEAP_SNAPSHOT ? 5000 : 200);
  if (existsSync(from)) copyFileSync(from, to);
  if (existsSync(`${from}.snapshot`)) copyFileSync(`${from}.snapshot`, `${to}.snapshot`);
}
/** Packets in and out of a namespace's eth0 so far: what idle links cost, whatever the machine's load. */
function packets(ns: string): number {
  const read = (d: string) => Number(sh(["ip", "netns", "exec", ns, "cat", `/sys/class/net/eth0/statistics/${d}_packets`]).trim());
  return read("rx") + read("tx");
}
/** UDP datagrams and TCP segments in and out of a namespace so far (its /proc/net/snmp): what carries the idle packets. */
function protoPackets(ns: string): { udp: number; tcp: number } {
  const snmp = sh(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"]).split("\n");
  const row = (p: string) => {
    const [head, vals] = snmp.filter((l) => l.startsWith(`${p}:`)).map((l) => l.split(/\s+/).slice(1));
    return Object.fromEntries(head.map((h, i) => [h, Number(vals[i])]));
  };
  const u = row("Udp"), t = row("Tcp");
  return { udp: u.InDatagrams + u.OutDatagrams, tcp: t.InSegs + t.OutSegs };
}
/** Sockets the process holds (UDP and TCP). */
function sockets(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`))
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) n++;
    } catch {} // closed meanwhile
  return n;
}

const dir = tempDir("bench-peers");
const net = new TestNet("pl");
const workers: { proc: ChildProcess; count: number; lines: string[] }[] = [];
let relay: TestNode | undefined, edge: TestNode | undefined;
/** --failover: a second relay and two edges that reach each other only through the relays. */
const fo: { relay2?: TestNode; a?: TestNode; b?: TestNode } = {};
/** Stop every process this run started and remove its namespaces (also on ^C). */
let cleaning: Promise<void> | undefined;
/** One clean-up, awaited by whoever asks (^C and the finally block may both). */
function cleanup(): Promise<void> {
  return (cleaning ??= doCleanup());
}
async function doCleanup(): Promise<void> {
  for (const w of workers) w.proc.kill("SIGTERM");
  const exits = Promise.all(workers.map((w) => new Promise((r) => (w.proc.exitCode !== null || w.proc.signalCode !== null ? r(null) : w.proc.once("exit", r)))));
  await Promise.race([exits, Bun.sleep(5000)]);
  for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill("SIGKILL");
  for (const n of [relay, edge, fo.relay2, fo.a, fo.b]) if (n?.pid) await n.stop().catch(() => {});
  if (values.keep && relay) {
    mkdirSync(values.keep, { recursive: true });
    if (existsSync(relay.logPath)) copyFileSync(relay.logPath, join(values.keep, "relay.log"));
  }
  net.destroy();
  rmSync(dir, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void cleanup().then(() => process.exit(130)));
try {
  net.addHost("relay");
  const seed = `http://${net.host("relay").ip}:7443`;
  const ids = Array.from({ length: max }, (_, i) => benchIdentity(i).public.id);
  net.addHost("edge");
  const bunFlags = [...(values.smol ? ["--smol"] : []), ...(values.prof ? ["--cpu-prof-md", `--cpu-prof-dir=${values.prof}`] : [])];
  // The heap statistics (a full collection, a sweep, Bun.shrink() and a heap snapshot after each step's
  // window) leave the relay costlier in the windows that follow: --idle-prof preloads without taking them.
  const heapDir = values.prof ?? values.heap;
  if (values["idle-prof"]) {
    for (const d of ["relay", "members"]) mkdirSync(join(values["idle-prof"], d), { recursive: true });
    chmodSync(join(values["idle-prof"], "relay"), 0o777); // the relay drops to nobody
    process.env.TRELLIS_IDLE_PROF = join(values["idle-prof"], "relay");
  }
  if (heapDir) {
    mkdirSync(heapDir, { recursive: true });
    chmodSync(heapDir, 0o777); // the relay drops to nobody
  }
  relay = new TestNode(net, { host: "relay", name: "relay", relay: true, seeds: [seed], extra: `max_peers = ${max + 8}`, bunFlags: bunFlags.length ? bunFlags : undefined, user: values["keep-root"] ? "root" : undefined, preload: heapDir || values["idle-prof"] ? join(ROOT, "bench/heap-preload.ts") : undefined }, dir);
  edge = new TestNode(net, { host: "edge", name: "edge", seeds: [seed], allow: [relay.id], user: values["keep-root"] ? "root" : undefined }, dir);
  if (values.failover) {
    for (const h of ["relay2", "fa", "fb"]) net.addHost(h);
    const seed2 = `http://${net.host("relay2").ip}:7443`;
    fo.relay2 = new TestNode(net, { host: "relay2", name: "relay2", relay: true, seeds: [seed2] }, dir);
    fo.a = new TestNode(net, { host: "fa", name: "fa", seeds: [seed, seed2] }, dir);
    fo.b = new TestNode(net, { host: "fb", name: "fb", seeds: [seed, seed2] }, dir);
    fo.relay2.spec.allow = [fo.a.id, fo.b.id];
    fo.a.spec.allow = [fo.b.id, relay.id, fo.relay2.id];
    fo.b.spec.allow = [fo.a.id, relay.id, fo.relay2.id];
    for (const n of [fo.relay2, fo.a, fo.b]) n.writeConfig();
    net.block("fa", "fb"); // only the relays connect them
  }
  relay.spec.allow = [...ids, edge.id, ...(fo.a && fo.b ? [fo.a.id, fo.b.id] : [])];
  relay.writeConfig();
  // Debug logging of a thousand links would be measured too: the relay logs at info, as deployed.
  if (!values.keep) writeFileSync(relay.configPath, readFileSync(relay.configPath, "utf8").replace('log_level = "debug"', 'log_level = "info"'));
  await relay.start();
  const relayPid = relay.pid!;
  const base = usage(relayPid);
  console.log(`relay alone: RSS ${base.rssMb.toFixed(1)} MB (${base.anonMb.toFixed(1)} MB anonymous), ${sockets(relayPid)} sockets`);

  const points: { n: number; rss: number; anon: number; cpu: number; harness: number }[] = [];
  let started = 0;
  for (const n of steps) {
    const t0 = Date.now();
    while (started < n) {
      const count = Math.min(per, n - started);
      const host = net.addHost(`w${workers.length}`);
      // Niced: the emulated members stand for machines of their own; on this shared box they yield to the relay.
      const proc = spawn("ip", ["netns", "exec", host.ns, "nice", "-n", String(values.nice), BUN, join(ROOT, "bench/peers-worker.ts"), "--first", String(started), "--count", String(count), "--seed", seed, "--relay", relay.id, "--dir", join(dir, `w${workers.length}`), "--stagger", "250"], { stdio: ["pipe", "pipe", "inherit"], env: { ...process.env, TRELLIS_IDLE_PROF: values["idle-prof"] ? join(values["idle-prof"], "members") : "" } });
      const w = { proc, count, lines: [] as string[] };
      proc.stdout!.on("data", (d: Buffer) => w.lines.push(...d.toString().trim().split("\n")));
      workers.push(w);
      started += count;
    }
    let statusMs = 0;
    const alive = async () => {
      const t = performance.now();
      // Not relay.api(): its 10 s limit is too short for a relay's status with hundreds of peers; and
      // not synchronous, so that ^C still cleans up while a slow answer is awaited.
      const token = readFileSync(join(relay!.dir, "state", "api.token"), "utf8").trim();
      const curl = Bun.spawn(["ip", "netns", "exec", relay!.ns, "curl", "-s", "--max-time", "300", "-H", `Authorization: Bearer ${token}`, "http://127.0.0.1:7080/v1/status"], { stdout: "pipe" });
      const out = await new Response(curl.stdout).text();
      const n = JSON.parse(out).links.filter((l: { alive: boolean }) => l.alive).length;
      statusMs = performance.now() - t;
      return n;
    };
    let last = 0, traced = Date.now(), peakRss = 0;
    const c0 = usage(relayPid).ticks;
    await waitFor(`${n} links at the relay`, async () => {
      last = await alive();
      const u = usage(relayPid);
      peakRss = Math.max(peakRss, u.rssMb);
      if (Date.now() - traced >= 15_000 || last >= n) {
        traced = Date.now();
        console.log(`  ${((traced - t0) / 1000).toFixed(0)} s: ${last}/${n} links alive; relay RSS ${u.rssMb.toFixed(0)} MB (peak ${peakRss.toFixed(0)}), CPU ${((100 * (u.ticks - c0)) / ((traced - t0) / 10)).toFixed(0)}% of a core since the start, ${sockets(relayPid)} sockets; load ${loadavg()[0].toFixed(1)}`);
      }
      return last >= n;
    }, values.wait ? Number(values.wait) * 1000 : 60_000 + n * 400).catch((e) => console.log(`  only ${last} of ${n} links came up: ${(e as Error).message.split("\n")[0]}`));
    const upS = (Date.now() - t0) / 1000;
    await Bun.sleep(settleMs);
    const wpids = workers.map((w) => w.proc.pid!).filter(Boolean);
    if (values["idle-prof"] && n === max) for (const pid of [relayPid, wpids[0]]) process.kill(pid, "SIGUSR1");
    const u0 = usage(relayPid), h0 = ticksOf(wpids), l0 = loadavg()[0], p0 = packets(relay.ns), q0 = protoPackets(relay.ns);
    await Bun.sleep(windowS * 1000);
    const u1 = usage(relayPid), h1 = ticksOf(wpids), p1 = packets(relay.ns), q1 = protoPackets(relay.ns);
    if (values["idle-prof"] && n === max) {
      for (const pid of [relayPid, wpids[0]]) process.kill(pid, "SIGUSR1"); // ends the window: they write their profiles and exit
      console.log(`N=${n}: ${(((u1.ticks - u0.ticks) / 100 / windowS) * 100).toFixed(1)}% of a core idle (profiled); profiles in ${values["idle-prof"]}`);
      break;
    }
    const pps = (p1 - p0) / windowS;
    const cpu = (u1.ticks - u0.ticks) / 100 / windowS, harness = (h1 - h0) / 100 / windowS;
    const links = await alive().catch(() => -1);
    points.push({ n: links, rss: u1.rssMb, anon: u1.anonMb, cpu, harness });
    const heapOut = heapDir ? join(heapDir, `heap-${n}${points.length > 1 && points.at(-2)!.n === links ? `-${points.length}` : ""}.json`) : "";
    if (heapDir) heapSnapshot(relayPid, join(dir, "relay", "state", "heap.json"), heapOut);
    // The heap statistics run a full garbage collection first (bench/heap-preload.ts): the RSS right after it.
    let gced = "";
    try {
      if (heapOut) gced = ` (${(JSON.parse(readFileSync(heapOut, "utf8")).memory.rss / 2 ** 20).toFixed(1)} MB after a full GC)`;
    } catch {} // no statistics written

    console.log(
      `N=${n}: ${links} links alive (up in ${upS.toFixed(0)} s); relay RSS ${u1.rssMb.toFixed(1)} MB${gced} (${u1.anonMb.toFixed(1)} MB anonymous), idle CPU ${(cpu * 100).toFixed(1)}% of a core, ${sockets(relayPid)} sockets, ${pps.toFixed(0)} packets/s (${(pps / Math.max(1, links)).toFixed(2)} per link: UDP ${((q1.udp - q0.udp) / windowS / Math.max(1, links)).toFixed(2)}, TCP ${((q1.tcp - q0.tcp) / windowS / Math.max(1, links)).toFixed(2)}); /v1/status took ${(statusMs / 1000).toFixed(1)} s; ` +
        `harness ${(harness * 100).toFixed(0)}% of a core in ${workers.length} processes; load ${l0.toFixed(1)}→${loadavg()[0].toFixed(1)}`,
    );
  }
  if (points.length >= 2) {
    const slope = (ys: number[]) => {
      const xs = points.map((p) => p.n), mx = xs.reduce((s, x) => s + x, 0) / xs.length, my = ys.reduce((s, y) => s + y, 0) / ys.length;
      return xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
    };
    const perRss = slope(points.map((p) => p.rss)), perCpu = slope(points.map((p) => p.cpu)), perAnon = slope(points.map((p) => p.anon));
    const at0 = points[0].rss - points[0].n * perRss;
    console.log(`per linked peer: ${perRss.toFixed(3)} MB RSS (${perAnon.toFixed(3)} MB anonymous), ${(perCpu * 100).toFixed(3)}% of a core idle → 1,000 peers ≈ ${(at0 + 1000 * perRss).toFixed(0)} MB, ${((points[0].cpu - points[0].n * perCpu + 1000 * perCpu) * 100).toFixed(1)}% of a core`);
  }
  if (values.restart) await restart(points.at(-1)?.n ?? 0);
  if (values["idle-prof"]) throw new Done("the relay stopped at the end of the profiled window: no edge or failover measured");
  // One real edge process, linked to the relay, idle.
  await edge.start();
  await waitFor("edge linked", () => edge!.api("/v1/status").links.some((l: { alive: boolean }) => l.alive), 60_000);
  await Bun.sleep(settleMs);
  const e0 = usage(edge.pid!);
  await Bun.sleep(windowS * 1000);
  const e1 = usage(edge.pid!);
  console.log(`edge idle with one relay link: RSS ${e1.rssMb.toFixed(1)} MB, CPU ${((e1.ticks - e0.ticks) / windowS).toFixed(2)}% of a core`);
  if (values.failover) await failover(points.at(-1)?.n ?? 0);
  console.log(`(${sh(["nproc"]).trim()} cores shared with whatever else runs; load average ${loadavg().map((x) => x.toFixed(1)).join(" ")})`);
} catch (e) {
  if (!(e instanceof Done)) throw e;
  console.log(e.message);
} finally {
  await cleanup();
}

/** Restart the relay with `peers` linked to it, and trace them coming back (links alive, RSS, CPU). */
async function restart(peers: number): Promise<void> {
  await relay!.stop();
  await relay!.start();
  const pid = relay!.pid!, t0 = Date.now();
  const token = () => readFileSync(join(relay!.dir, "state", "api.token"), "utf8").trim();
  let peak = 0, last = 0, traced = t0;
  await waitFor(`${peers} links back`, async () => {
    const curl = Bun.spawn(["ip", "netns", "exec", relay!.ns, "curl", "-s", "--max-time", "300", "-H", `Authorization: Bearer ${token()}`, "http://127.0.0.1:7080/v1/status"], { stdout: "pipe" });
    last = JSON.parse(await new Response(curl.stdout).text()).links.filter((l: { alive: boolean }) => l.alive).length;
    const u = usage(pid);
    peak = Math.max(peak, u.rssMb);
    if (Date.now() - traced >= 15_000 || last >= peers) {
      traced = Date.now();
      console.log(`  restart +${((traced - t0) / 1000).toFixed(0)} s: ${last}/${peers} links alive; relay RSS ${u.rssMb.toFixed(0)} MB (peak ${peak.toFixed(0)}), CPU ${((100 * u.ticks) / ((traced - t0) / 10)).toFixed(0)}% of a core since the restart; load ${loadavg()[0].toFixed(1)}`);
    }
    return last >= peers;
  }, values.wait ? Number(values.wait) * 1000 : 60_000 + peers * 400).catch(() => console.log(`  restart: only ${last} of ${peers} links came back`));
}

/**
 * With `peers` linked to the relay: the first packet's round trip between two edges that reach each other
 * only through the relays (no session yet: its handshake rides the relay), then a 20 ms ping between them
 * while the relay carrying it is killed: the longest gap between replies, and how many were lost.
 */
async function failover(peers: number): Promise<void> {
  const { relay2, a, b } = fo as Required<typeof fo>;
  await relay2.start();
  await Promise.all([a.start(), b.start()]);
  const liveRelays = (x: TestNode) => (x.api("/v1/status").links ?? []).filter((l: { relay?: boolean; alive: boolean }) => l.relay && l.alive).length;
  for (const x of [a, b]) await waitFor(`${x.spec.name} linked to both relays`, () => liveRelays(x) === 2, 90_000);
  const pingOnce = () => sh(["ip", "netns", "exec", a.ns, "ping", "-c", "1", "-W", "5", b.ipv6], { allowFail: true });
  const first = /time=([\d.]+) ms/.exec(pingOnce())?.[1];
  const warm = /time=([\d.]+) ms/.exec(pingOnce())?.[1];
  console.log(`failover (${peers} peers on the relay): first packet fa → fb through a relay ${first ?? "lost"} ms (no session yet), next ${warm ?? "lost"} ms`);
  const path = () => a.api("/v1/status").peers?.find((p: { id: string }) => p.id === b.id)?.path as string | undefined;
  const victim = await waitFor("fa → fb on a relay", () => [relay!, relay2].find((r) => path() === `relay:${r.id}`), 10_000);
  const ping = Bun.spawn(["ip", "netns", "exec", a.ns, "ping", "-D", "-i", "0.02", "-W", "1", "-w", "8", b.ipv6], { stdout: "pipe" });
  await Bun.sleep(3000);
  const killedAt = Date.now();
  victim.kill();
  const out = await new Response(ping.stdout).text();
  const replies = [...out.matchAll(/^\[([\d.]+)\].*icmp_seq=(\d+)/gm)].map((m) => ({ at: Number(m[1]) * 1000, seq: Number(m[2]) }));
  let gap = 0, lost = 0;
  for (let i = 1; i < replies.length; i++) {
    if (replies[i].at < killedAt - 100) continue;
    gap = Math.max(gap, replies[i].at - replies[i - 1].at);
    lost += Math.max(0, replies[i].seq - replies[i - 1].seq - 1);
  }
  const dead = a.logs().split("\n").find((l) => Date.parse(l.split(" ")[0]) >= killedAt && l.includes(`link to ${victim.id} silent`));
  console.log(
    `failover: killed ${victim === relay ? "the loaded relay" : "relay2"}; longest gap between replies ${gap.toFixed(0)} ms, ${lost} of ${replies.length + lost} pings lost; ` +
      `fa declared it dead ${dead ? `${Date.parse(dead.split(" ")[0]) - killedAt} ms` : "(not logged)"} after the kill; path now ${path()}`,
  );
}
