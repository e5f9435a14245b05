// e2e: any node relays. Edge nodes behind their own NATs (one symmetric) with direct traffic blocked
// reach each other through two relays on a "public" subnet; a relay dies mid-transfer and the TCP
// stream completes intact; a non-member gets nothing from the relays; with the seed gone, a direct link
// still forms (signalled through a relay) once the block is lifted, and traffic moves to it; the idle
// link then closes. A second network checks a three-relay chain, a relay with seed = false (listens on
// nothing) and a relay at max_peers. Real nodes, NATs, TUN and werift.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { BUN, ROOT, TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";
import { tcpTransfer } from "../lib/transfer.ts";
import { enrol } from "../lib/members.ts";
import { createNetwork, type Root } from "../../src/trust/root.ts";

setDefaultTimeout(180_000);
const root = e2eReady(import.meta.file);

/** true: replies; false: none; throws when ping itself could not run (see TestNode.ping). */
const ping = (from: TestNode, addr: string, count = 2): boolean => from.ping(addr, count);
const peer = (x: TestNode, y: TestNode) => x.api("/v1/status").peers?.find((p: any) => p.id === y.id);
const liveRelays = (x: TestNode) => (x.api("/v1/status").links ?? []).filter((l: any) => l.relay && l.alive).map((l: any) => l.peer);

/** CPU seconds (user + system) and resident MB of a process, from /proc. */
function usage(pid: number): { cpuS: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuS: (Number(stat[11]) + Number(stat[12])) / 100, rssMb: rss / 1024 };
}

describe.skipIf(!root)("any node relays (NATs in namespaces)", () => {
  let net: TestNet, dir: string;
  const n: Record<string, TestNode> = {};

  beforeAll(async () => {
    dir = tempDir("e2e-relays");
    net = new TestNet("rly");
    for (const h of ["r1", "r2", "x"]) net.addHost(h);
    net.addNatHost("a");
    net.addNatHost("b");
    net.addNatHost("c", true);
    const s1 = `http://${net.host("r1").ip}:7443`, s2 = `http://${net.host("r2").ip}:7443`;
    const home = createNetwork("home", join(dir, "root"));
    n.r1 = new TestNode(net, { host: "r1", name: "relay-1", relay: true, listen: `${net.host("r1").ip}:7443`, seeds: [s1] }, dir);
    n.r2 = new TestNode(net, { host: "r2", name: "relay-2", relay: true, listen: `${net.host("r2").ip}:7443`, seeds: [s1] }, dir);
    // a knows both seeds; b and c only the first: once it is gone, their signals go through relays.
    n.a = new TestNode(net, { host: "a", name: "alpha", seeds: [s1, s2], idleTimeout: "5s" }, dir);
    n.b = new TestNode(net, { host: "b", name: "bravo", seeds: [s1], idleTimeout: "5s" }, dir);
    n.c = new TestNode(net, { host: "c", name: "charlie", seeds: [s1] }, dir);
    n.x = new TestNode(net, { host: "x", name: "stranger", seeds: [s1] }, dir);
    [["r1", "100.64.3.11"], ["r2", "100.64.3.12"], ["a", "100.64.3.1"], ["b", "100.64.3.2"], ["c", "100.64.3.3"]].forEach(([h, ip]) => enrol(n[h], home, ip));
    n.x.spec.allow = [n.a.id]; // x knows a's id but is not a member
    n.x.writeConfig();
    // No direct paths between the edges: only the relays connect them.
    net.block("a", "b");
    net.block("a", "c");
    net.block("b", "c");
    await n.r1.start();
    await n.r2.start();
    await Promise.all(["a", "b", "c", "x"].map((h) => n[h].start()));
  });

  afterAll(async () => {
    await teardown(Object.values(n), net, dir);
  });

  test("edge nodes attach to both relays (one learned from the other's record)", async () => {
    for (const h of ["a", "b", "c"]) await waitFor(`${h} linked to both relays`, () => liveRelays(n[h]).length === 2, 60_000);
    expect(liveRelays(n.a).sort()).toEqual([n.r1.id, n.r2.id].sort());
  });

  test("ping through a relay; status and trellis ping name the relay", async () => {
    await waitFor("a → b ping", () => ping(n.a, n.b.ipv6), 30_000);
    const path = peer(n.a, n.b)?.path as string;
    expect(path).toMatch(/^relay:[0-9a-f]{32}$/);
    expect([`relay:${n.r1.id}`, `relay:${n.r2.id}`]).toContain(path);
    const out = n.a.cli(["ping", n.b.id, "--count", "1", "--config", n.a.configPath]);
    expect(out.code).toBe(0);
    expect(out.out).toContain("relay:");
    // The symmetric NAT's node gets there the same way.
    await waitFor("c → a ping", () => ping(n.c, n.a.ipv6), 30_000);
    expect(peer(n.c, n.a)?.path).toMatch(/^relay:/);
  });

  test("a 200 MB TCP transfer survives the death of the relay carrying it, every byte intact", async () => {
    const port = 5201, TOTAL = 200 * 1024 * 1024;
    const server = spawn("ip", ["netns", "exec", n.b.ns, BUN, join(ROOT, "test/lib/tcp.ts"), "serve", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
    let serverOut = "";
    server.stdout.on("data", (d) => (serverOut += d));
    await waitFor("tcp server", () => sh(["ip", "netns", "exec", n.b.ns, "ss", "-ltn"], { allowFail: true }).includes(`:${port}`));
    const sender = spawn("ip", ["netns", "exec", n.a.ns, BUN, join(ROOT, "test/lib/tcp.ts"), "send", n.b.ipv6, String(port), String(TOTAL)], { stdio: ["ignore", "pipe", "pipe"] });
    let senderOut = "", senderErr = "";
    sender.stdout.on("data", (d) => (senderOut += d));
    sender.stderr.on("data", (d) => (senderErr += d));
    const done = new Promise<number | null>((res) => sender.on("exit", res));
    // Let the stream run (until 20 MB went through the relays, however fast they are); measure the relay
    // forwarding the most for a second, then kill the one a → b uses, well before the stream ends.
    const relays = [n.r1, n.r2];
    const start = relays.map((r) => r.api("/v1/status").relay.forwarded_bytes as number);
    await waitFor("20 MB through the relays", () => relays.reduce((s, r, i) => s + r.api("/v1/status").relay.forwarded_bytes - start[i], 0) >= 20e6, 60_000);
    const fwd0 = relays.map((r) => r.api("/v1/status").relay.forwarded_bytes as number);
    const cpu0 = relays.map((r) => usage(r.pid!));
    const t0 = Date.now();
    await Bun.sleep(1000);
    const secs = (Date.now() - t0) / 1000;
    const fwd1 = relays.map((r) => r.api("/v1/status").relay.forwarded_bytes as number);
    const cpu1 = relays.map((r) => usage(r.pid!));
    const k = fwd1[0] - fwd0[0] >= fwd1[1] - fwd0[1] ? 0 : 1;
    const mbit = ((fwd1[k] - fwd0[k]) * 8) / 1e6 / secs;
    const cpu = (cpu1[k].cpuS - cpu0[k].cpuS) / secs;
    console.log(`relay ${relays[k].spec.name} forwarding the stream: ${mbit.toFixed(1)} Mbit/s, CPU ${(cpu * 100).toFixed(0)}% of a core (${((cpu * 100) / Math.max(mbit, 0.001)).toFixed(2)}% per Mbit/s), RSS ${cpu1[k].rssMb.toFixed(0)} MB with ${relays[k].api("/v1/status").links.length} linked peers`);
    expect(mbit).toBeGreaterThan(0);
    // Kill the relay a's packets to b take right now (the path policy may have moved since; under load a
    // status read can fall between paths, so wait for one).
    // Each side's path read once, and the victim chosen from those same reads.
    const { victim, onVictim } = await waitFor("a → b on a relay", () => {
      const pa = peer(n.a, n.b)?.path, pb = peer(n.b, n.a)?.path;
      const v = [n.r1, n.r2].find((r) => pa === `relay:${r.id}`);
      return v && { victim: v, onVictim: [[n.a, n.b], ...(pb === `relay:${v.id}` ? [[n.b, n.a]] : [])] };
    }, 10_000);
    const survivor = victim === n.r1 ? n.r2 : n.r1;
    expect(sender.exitCode).toBeNull(); // the stream is still flowing when its relay dies
    const killedAt = Date.now();
    victim.kill();
    try {
      const code = await done;
      expect(senderErr).toBe("");
      expect(code).toBe(0);
      await waitFor("server summary", () => serverOut.includes("sha256"), 30_000);
      const sent = JSON.parse(senderOut.trim()), got = JSON.parse(serverOut.trim());
      expect(got.bytes).toBe(TOTAL);
      expect(got.sha256).toBe(sent.sha256);
      // The failover, from the logs: when each side's path moved off the dead relay.
      const moved = (x: TestNode, y: TestNode) =>
        x.logs().split("\n").find((l) => Date.parse(l.split(" ")[0]) >= killedAt && l.includes(`path to ${y.id}: relay:${victim.id} → relay:${survivor.id}`));
      const moves = onVictim.map(([x, y]) => moved(x, y));
      expect(onVictim.length).toBeGreaterThan(0);
      expect(moves.every((l) => l !== undefined)).toBe(true);
      // Two figures: when a's router declared the relay's link dead (from then on every packet takes the
      // other relay), and when the next packet after that went out on the new path (TCP may be waiting).
      const dead = n.a.logs().split("\n").find((l) => Date.parse(l.split(" ")[0]) >= killedAt && l.includes(`link to ${victim.id} silent`));
      if (dead) console.log(`failover: a declared the killed relay dead ${Date.parse(dead.split(" ")[0]) - killedAt} ms after the kill`);
      for (const l of moves as string[]) console.log(`failover: ${l.slice(l.indexOf("path to"))} ${Date.parse(l.split(" ")[0]) - killedAt} ms after the relay was killed`);
      // The README's "within about a second": the dead relay is declared dead within 1.5 s, and each
      // path is off it within 2 s (the next packet may wait on TCP's own timers).
      expect(dead).toBeDefined();
      expect(Date.parse(dead!.split(" ")[0]) - killedAt).toBeLessThan(1500);
      for (const l of moves as string[]) expect(Date.parse(l.split(" ")[0]) - killedAt).toBeLessThan(2000);
      expect(peer(n.a, n.b)?.path).toBe(`relay:${survivor.id}`);
    } finally {
      // Bring the relay back for the tests that follow. Re-attached means a link to the new process is
      // up: one opened after the restart (a link to the old process can still look alive for a while,
      // and b, whose only seed is r1, could not make a new one once r1 is gone in the tests below).
      const restartedAt = Date.now();
      await victim.start();
      const fresh = (x: TestNode) =>
        (x.api("/v1/status").links ?? []).some((l: any) => l.peer === victim.id && l.alive && l.uptime_s * 1000 <= Date.now() - restartedAt);
      for (const h of ["a", "b"]) await waitFor(`${h} re-attached to both relays (a link to ${victim.spec.name} opened after its restart)`, () => fresh(n[h]) && liveRelays(n[h]).length === 2, 60_000);
    }
  });

  test("a non-member cannot use the relays", async () => {
    expect(ping(n.x, n.a.ipv6, 2)).toBe(false);
    expect(liveRelays(n.x)).toEqual([]);
    await waitFor("relay refuses the stranger", () => n.r1.logs().includes(`${n.x.id} is not in [network] allow and not a member`), 30_000);
    expect(n.r1.api("/v1/status").links.map((l: any) => l.peer)).not.toContain(n.x.id);
  });

  test("with the seed gone, a new direct link still forms (signalled through a relay) and traffic moves to it", async () => {
    await n.r1.stop();
    await waitFor("b lost its only seed", () => n.b.logs().includes("lost seed"), 30_000);
    net.block("a", "b", false);
    await waitFor("a → b direct", () => {
      ping(n.a, n.b.ipv6, 1);
      return peer(n.a, n.b)?.path === "direct" && peer(n.b, n.a)?.path === "direct";
    }, 90_000);
    expect(n.b.logs()).toContain(`signal from ${n.a.id} through relays`);
    expect(ping(n.a, n.b.ipv6, 3)).toBe(true);
  });

  test("an idle direct link closes after [node] idle_timeout; the relay links stay", async () => {
    // Whichever side notices first closes it (and tells the other).
    await waitFor("idle link closed", () => n.a.logs().includes(`link to ${n.b.id} idle`) || n.b.logs().includes(`link to ${n.a.id} idle`), 30_000);
    await waitFor("link gone from status", () => !(n.a.api("/v1/status").links ?? []).some((l: any) => l.peer === n.b.id), 10_000);
    expect(liveRelays(n.a)).toContain(n.r2.id);
  });
});

describe.skipIf(!root)("a three-relay chain, a relay that is no seed, a full relay (namespaces)", () => {
  let net: TestNet, dir: string, home: Root;
  const n: Record<string, TestNode> = {};

  beforeAll(async () => {
    dir = tempDir("e2e-chain");
    net = new TestNet("chn");
    for (const h of ["r3", "r4", "r5", "r6", "r7"]) net.addHost(h);
    net.addNatHost("d");
    net.addNatHost("e");
    const s3 = `http://${net.host("r3").ip}:7443`, s4 = `http://${net.host("r4").ip}:7443`, s5 = `http://${net.host("r5").ip}:7443`;
    home = createNetwork("chain", join(dir, "root"));
    // Each relay signals at its own seed and its predecessor's, as in the two-relay chain.
    n.r3 = new TestNode(net, { host: "r3", name: "relay-3", relay: true, seeds: [s3] }, dir);
    n.r4 = new TestNode(net, { host: "r4", name: "relay-4", relay: true, seeds: [s3, s4] }, dir);
    n.r5 = new TestNode(net, { host: "r5", name: "relay-5", relay: true, seeds: [s4, s5] }, dir);
    // r6 relays but serves no signalling or STUN ([relay] seed = false): it listens on nothing.
    n.r6 = new TestNode(net, { host: "r6", name: "relay-6", relay: true, seeds: [s4], extra: "seed = false" }, dir);
    // r7 takes one link at most (r4's); a node that comes later is turned away (the max_peers test).
    n.r7 = new TestNode(net, { host: "r7", name: "relay-7", relay: true, seeds: [s4], extra: "seed = false\nmax_peers = 1" }, dir);
    n.d = new TestNode(net, { host: "d", name: "delta", seeds: [s3] }, dir);
    n.e = new TestNode(net, { host: "e", name: "echo", seeds: [s5] }, dir);
    [["r3", "100.64.4.13"], ["r4", "100.64.4.14"], ["r5", "100.64.4.15"], ["r6", "100.64.4.16"], ["r7", "100.64.4.17"], ["d", "100.64.4.1"], ["e", "100.64.4.2"]].forEach(([h, ip]) => enrol(n[h], home, ip));
    // Each node reaches only its neighbours: d — r3 — r4 — r5 — e; r6 and r7 only r4.
    for (const [x, y] of [["d", "e"], ["d", "r4"], ["d", "r5"], ["d", "r6"], ["d", "r7"], ["e", "r3"], ["e", "r4"], ["e", "r6"], ["e", "r7"], ["r3", "r5"], ["r3", "r6"], ["r3", "r7"], ["r5", "r6"], ["r5", "r7"], ["r6", "r7"]]) net.block(x, y);
    for (const r of ["r3", "r4", "r5", "r6", "r7"]) await n[r].start();
    await Promise.all([n.d.start(), n.e.start()]);
  });

  afterAll(async () => {
    await teardown(Object.values(n), net, dir);
  });

  test("a relay with [relay] seed = false listens on nothing public (the seeds beside it do), and is linked as a relay", async () => {
    const listening = (x: TestNode) => sh(["ip", "netns", "exec", x.ns, "ss", "-ltnuH"]);
    expect(listening(n.r4)).toMatch(/:7443\b/);
    expect(listening(n.r6)).not.toMatch(/:7443\b/);
    for (const l of sh(["ip", "netns", "exec", n.r6.ns, "ss", "-ltnH"]).trim().split("\n").filter(Boolean)) expect(l.split(/\s+/)[3]).toMatch(/^(127\.|\[::1\]|\[fd74:|100\.64\.)/);
    await waitFor("r4 ↔ r6 relay link", () => liveRelays(n.r4).includes(n.r6.id) && liveRelays(n.r6).includes(n.r4.id), 60_000);
  });

  test("d → r3 → r4 → r5 → e carries traffic, and ping shows the three relays", async () => {
    await waitFor("d attached to r3", () => liveRelays(n.d).includes(n.r3.id), 60_000);
    await waitFor("e attached to r5", () => liveRelays(n.e).includes(n.r5.id), 60_000);
    await waitFor("r3 ↔ r4 ↔ r5", () => liveRelays(n.r3).includes(n.r4.id) && liveRelays(n.r5).includes(n.r4.id), 60_000);
    await waitFor("d → e ping", () => ping(n.d, n.e.ipv6), 60_000);
    const out = n.d.cli(["ping", n.e.id, "--count", "1", "--config", n.d.configPath]);
    expect(out.code).toBe(0);
    expect(out.out).toContain(`relay:${n.r3.id} relay:${n.r4.id} relay:${n.r5.id}`);
    expect(peer(n.d, n.e)?.path).toBe(`relay:${n.r3.id} relay:${n.r4.id} relay:${n.r5.id}`);
    const { sent, recv } = await tcpTransfer(n.d, n.e, n.e.ipv6, 5202, 256 * 1024); // small: four hops on a loaded machine
    expect(recv).toEqual(sent);
  });

  test("a relay at [relay] max_peers turns the next node away, and says why", async () => {
    await waitFor("r7 full (r4)", () => liveRelays(n.r7).includes(n.r4.id), 60_000);
    net.addHost("f");
    for (const h of ["d", "e", "r3", "r5", "r6"]) net.block("f", h); // f reaches r4 and r7
    n.f = new TestNode(net, { host: "f", name: "foxtrot", seeds: [`http://${net.host("r4").ip}:7443`] }, dir);
    enrol(n.f, home, "100.64.4.6");
    await n.f.start();
    await waitFor("r7 refuses f: full", () => n.r7.logs().includes(`from ${n.f.id} refused: relay is full ([relay] max_peers = 1)`), 60_000);
    expect(liveRelays(n.f)).not.toContain(n.r7.id);
    expect(n.r7.api("/v1/status").links.map((l: any) => l.peer)).not.toContain(n.f.id);
    expect(liveRelays(n.f)).toContain(n.r4.id); // f itself is fine: r4 took it
  });
});
