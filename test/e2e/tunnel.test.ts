// e2e: two nodes and a seed in namespaces: ping both ways (IPv6, IPv4), a 20 MB TCP transfer by hash,
// a restart, a stranger refused, garbage at the seed. Real TUN, real werift, real processes.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { BUN, TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";
import { tcpTransfer } from "../lib/transfer.ts";
import { join } from "node:path";

setDefaultTimeout(90_000);
const root = e2eReady(import.meta.file);
let net: TestNet, dir: string;
let seed: TestNode, a: TestNode, b: TestNode, c: TestNode;

/** true: replies; false: none; throws when ping itself could not run (see TestNode.ping). */
const ping = (from: TestNode, addr: string, count = 3): boolean => from.ping(addr, count);

async function established(x: TestNode, y: TestNode) {
  return waitFor(`${x.spec.name} ↔ ${y.spec.name} session`, () => {
    const p = x.api("/v1/status").peers?.find((p: any) => p.id === y.id);
    return p?.session && p?.path === "direct" && p?.ipv4 ? p : null;
  }, 30000);
}

describe.skipIf(!root)("two nodes, one tunnel (namespaces)", () => {
  beforeAll(async () => {
    dir = tempDir("e2e-tunnel");
    net = new TestNet("tun");
    for (const h of ["seed", "a", "b", "c"]) net.addHost(h);
    const seedUrl = `http://${net.host("seed").ip}:7443`;
    seed = new TestNode(net, { host: "seed", name: "seed", relay: true }, dir);
    a = new TestNode(net, { host: "a", name: "alpha", ipv4: "100.64.0.2/24", seeds: [seedUrl] }, dir);
    b = new TestNode(net, { host: "b", name: "bravo", ipv4: "100.64.0.3/24", seeds: [seedUrl] }, dir);
    c = new TestNode(net, { host: "c", name: "charlie", ipv4: "100.64.0.4/24", seeds: [seedUrl] }, dir);
    a.spec.allow = [b.id];
    b.spec.allow = [a.id];
    c.spec.allow = [a.id]; // c knows a, but a does not list c
    for (const n of [a, b, c]) n.writeConfig();
    await seed.start();
    await Promise.all([a.start(), b.start(), c.start()]);
  });

  afterAll(async () => {
    await teardown([a, b, c, seed], net, dir);
  });

  test("a session forms and status shows it as direct", async () => {
    const p = await established(a, b);
    expect(p.name).toBe("bravo");
    expect(p.ipv6).toBe(b.ipv6);
    expect(p.ipv4).toBe("100.64.0.3");
    const s = JSON.parse(a.cli(["status", "--json", "--config", a.configPath]).out);
    expect(s.node).toMatchObject({ id: a.id, name: "alpha", ipv6: a.ipv6, ipv4: "100.64.0.2" });
    const peer = s.peers.find((p: any) => p.id === b.id);
    expect(peer).toMatchObject({ id: b.id, name: "bravo", ipv6: b.ipv6, ipv4: "100.64.0.3", path: "direct" });
    // The RTT is measured end to end by an overlay ping (/v1/ping; the node also probes peers it
    // carries traffic for every few seconds): a number in the ping's answer and then in status.
    const pinged = a.api(`/v1/ping?node=${b.id}`);
    expect(pinged).toMatchObject({ id: b.id, name: "bravo", path: "direct" });
    expect(typeof pinged.rtt_ms).toBe("number");
    const rtt = await waitFor("a measured RTT to b", () => {
      const v = a.api("/v1/status").peers.find((p: any) => p.id === b.id)?.rtt_ms;
      return typeof v === "number" ? { v } : null;
    }, 15000);
    expect(rtt.v).toBeGreaterThan(0);
    expect(rtt.v).toBeLessThan(1000);
    // /v1/peers is the same list as status's peers.
    expect(a.api("/v1/peers").find((p: any) => p.id === b.id)).toMatchObject({ id: b.id, name: "bravo", ipv4: "100.64.0.3" });
  });

  test("ping both ways over IPv6 and IPv4 through the TUN", async () => {
    await established(a, b);
    await established(b, a);
    expect(ping(a, b.ipv6)).toBe(true);
    expect(ping(b, a.ipv6)).toBe(true);
    expect(ping(a, "100.64.0.3")).toBe(true);
    expect(ping(b, "100.64.0.2")).toBe(true);
  });

  test("trellis ping by name prints the path and RTT", async () => {
    await established(a, b);
    const r = a.cli(["ping", "bravo", "--count", "2", "--interval", "0.2", "--config", a.configPath]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/reply from bravo .* path=direct time=\d+\.\d+ ms/);
  });

  test("a 20 MB TCP transfer arrives intact (sha256)", async () => {
    await established(a, b);
    const { sent, recv } = await tcpTransfer(a, b, b.ipv6, 5201, 20 * 1024 * 1024);
    expect(sent.bytes).toBe(20 * 1024 * 1024);
    expect(recv).toEqual(sent);
  });

  test("a restarted node comes back and traffic resumes", async () => {
    await established(a, b);
    const t0 = Date.now();
    // SIGTERM: a clean exit (0, not the SIGKILL stop() sends after 5 s), through the whole shutdown.
    // (The TUN going away proves nothing: the kernel deletes a non-persistent TUN with its process.)
    expect(await b.stop()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(b.logs()).toMatch(/SIGTERM: stopping[\s\S]*\bstopped\b/);
    expect(b.logs()).not.toMatch(/uncaught exception|unhandled rejection/);
    // a was told (a signed "bye"), so its link to b is down long before any idle timeout.
    await waitFor("a sees b's link closed", () => a.api("/v1/status").peers.find((p: any) => p.id === b.id)?.link !== "open", 3000);
    await b.start();
    await established(b, a);
    await waitFor("ping after restart", () => ping(a, b.ipv6, 1), 30000);
    expect(ping(b, "100.64.0.2")).toBe(true);
  });

  test("a node not on the allow-list gets nowhere, and the log says why", async () => {
    const r = c.cli(["ping", a.id, "--count", "2", "--interval", "0.2", "--timeout", "1", "--config", c.configPath]);
    expect(r.out).toMatch(/^no reply from/m);
    expect(r.out).not.toMatch(/^reply from/m);
    expect(r.code).toBe(1);
    expect(ping(c, a.ipv6, 2)).toBe(false);
    await waitFor("a's log names the refusal", () => a.logs().includes(`${c.id} is not in [network] allow`));
    const peer = a.api("/v1/status").peers.find((p: any) => p.id === c.id);
    expect(peer?.session ?? false).toBe(false);
  });

  test("SIGHUP reloads the allow-list without dropping the session; a bad config is refused and kept", async () => {
    await established(a, b);
    const mark = a.logMark();
    a.signal("SIGHUP");
    await waitFor("reload logged", () => a.logs().includes("SIGHUP: reloaded"));
    expect(ping(a, b.ipv6, 2)).toBe(true);
    // Same session: none closed. (Not a handshake count: the 2-minute rekey may add one at any time.)
    expect(a.logs().slice(mark)).not.toContain(`session with ${b.id} closed`);
    expect(a.api("/v1/status").peers.find((p: any) => p.id === b.id).session).toBe(true);
    // A broken edit: the node says so and keeps running with what it had.
    const good = await Bun.file(a.configPath).text();
    await Bun.write(a.configPath, good + "\n[tun]\nmtu = 12\n");
    a.signal("SIGHUP");
    await waitFor("bad reload logged", () => a.logs().includes("config not reloaded"));
    expect(a.logs()).toContain("[tun] mtu");
    expect(ping(a, b.ipv6, 1)).toBe(true);
    // Taking b off the allow-list closes its session at once.
    await Bun.write(a.configPath, good.replace(`allow = ["${b.id}"]`, "allow = []"));
    a.signal("SIGHUP");
    await waitFor("b removed", () => a.logs().includes(`peer ${b.id} removed from the allow-list`));
    expect(ping(a, b.ipv6, 2)).toBe(false);
    await Bun.write(a.configPath, good);
    a.signal("SIGHUP");
    await established(a, b);
    await waitFor("ping after re-allow", () => ping(a, b.ipv6, 1), 20000);
    // [paths] weights are re-read on SIGHUP too, and back to the defaults when the keys go.
    expect(a.api("/v1/paths").weights).toEqual({ latency: 0.5, loss: 0.3, goodput: 0.2 });
    await Bun.write(a.configPath, good + "\n[paths]\nlatency_weight = 0.8\nloss_weight = 0.1\ngoodput_weight = 0.1\n");
    a.signal("SIGHUP");
    await waitFor("new weights", () => JSON.stringify(a.api("/v1/paths").weights) === JSON.stringify({ latency: 0.8, loss: 0.1, goodput: 0.1 }), 10000);
    await Bun.write(a.configPath, good);
    a.signal("SIGHUP");
    await waitFor("default weights", () => a.api("/v1/paths").weights.latency === 0.5, 10000);
  });

  test("an edge node listens on nothing public: TCP on loopback only, UDP only on ephemeral ICE ports or the overlay", () => {
    const [lo, hi] = sh(["cat", "/proc/sys/net/ipv4/ip_local_port_range"]).trim().split(/\s+/).map(Number);
    const overlay = (addr: string) => addr.startsWith("[fd74:") || addr.startsWith("100.64.") || addr.startsWith("127.") || addr.startsWith("[::1]");
    for (const n of [a, b]) {
      const tcp = sh(["ip", "netns", "exec", n.ns, "ss", "-ltnH"]).trim().split("\n").filter(Boolean).map((l) => l.split(/\s+/)[3]);
      expect(tcp.length).toBeGreaterThan(0); // the API, at least
      for (const local of tcp) expect(overlay(local) ? "ok" : local).toBe("ok");
      const udp = sh(["ip", "netns", "exec", n.ns, "ss", "-lunH"]).trim().split("\n").filter(Boolean).map((l) => l.split(/\s+/)[3]);
      for (const local of udp) {
        const port = Number(local.slice(local.lastIndexOf(":") + 1));
        expect(overlay(local) || (port >= lo && port <= hi) ? "ok" : local).toBe("ok");
      }
    }
    // The seed, by contrast, listens on its public address: the check can tell the two apart.
    expect(sh(["ip", "netns", "exec", seed.ns, "ss", "-ltnH"])).toMatch(/:7443\b/);
  });

  test("a packet with a spoofed inner source is dropped at the receiver (the key is the route) and counted", async () => {
    await established(a, b);
    const before = b.api("/v1/status");
    const spoofedBefore = before.counters.outside_spoofed;
    // a puts c's overlay address on its own TUN and pings b from it: trellis on a seals the packet
    // with a's keys, so b must see that the inner source is not a's and drop it.
    sh(["ip", "netns", "exec", a.ns, "ip", "-6", "addr", "add", `${c.ipv6}/128`, "dev", "trellis0", "nodad"]);
    try {
      const r = Bun.spawnSync(["ip", "netns", "exec", a.ns, "ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", c.ipv6, b.ipv6]);
      expect(r.exitCode).toBe(1); // ran, no reply
    } finally {
      sh(["ip", "netns", "exec", a.ns, "ip", "-6", "addr", "del", `${c.ipv6}/128`, "dev", "trellis0"], { allowFail: true });
    }
    const after = b.api("/v1/status");
    expect(after.counters.outside_spoofed).toBeGreaterThanOrEqual(spoofedBefore + 3);
    expect(after.peers.find((p: any) => p.id === a.id).spoof_drops).toBeGreaterThanOrEqual(3);
    // The same ping from a's own address still works: the drops were for the source, not the path.
    expect(ping(a, b.ipv6, 1)).toBe(true);
  });

  test("garbage at a node's link sockets does not crash it", async () => {
    // Every UDP port the node has open (ICE host candidates): random datagrams, including ones that
    // look like STUN, DTLS and session packets by their first byte.
    // Only the node runs in b's namespace, so every bound UDP port there is one of its sockets.
    const ports = [...sh(["ip", "netns", "exec", b.ns, "ss", "-unlH"]).matchAll(/\S+:(\d+)\s+\S+:\*/g)].map((m) => Number(m[1]));
    expect(ports.length).toBeGreaterThan(0);
    const bIp = net.host("b").ip;
    const script = `const s = await Bun.udpSocket({}); for (const p of ${JSON.stringify(ports)}) for (let i = 0; i < 200; i++) { const g = crypto.getRandomValues(new Uint8Array(1 + (i * 13) % 1400)); g[0] = [0, 1, 22, 23, 0x45, 0x80, 0xc1, 0xc2, 0xc4][i % 9]; s.send(g, p, "${bIp}"); } s.close();`;
    const mark = b.logMark();
    sh(["ip", "netns", "exec", a.ns, BUN, "-e", script]);
    await Bun.sleep(500);
    b.assertHealthySince(mark); // still serving, and no exception swallowed by the catch-all
    await waitFor("ping after garbage", () => ping(a, b.ipv6, 1), 10000);
    b.assertHealthySince(mark);
  });

  test("garbage at the seed does not crash it", async () => {
    const seedIp = net.host("seed").ip;
    const mark = seed.logMark();
    const junk = join(dir, "junk.bin");
    await Bun.write(junk, crypto.getRandomValues(new Uint8Array(4096)));
    sh(["ip", "netns", "exec", a.ns, "curl", "-s", "--max-time", "3", "-X", "POST", "--data-binary", `@${junk}`, `http://${seedIp}:7443/v1/signal`], { allowFail: true });
    sh(["ip", "netns", "exec", a.ns, "curl", "-s", "--max-time", "3", "-H", "Upgrade: websocket", "-H", "Connection: Upgrade", `http://${seedIp}:7443/v1/signal`], { allowFail: true });
    sh(["ip", "netns", "exec", a.ns, BUN, "-e", `const s = await Bun.udpSocket({}); for (let i = 0; i < 50; i++) s.send(crypto.getRandomValues(new Uint8Array(1 + i * 20)), 7443, "${seedIp}"); s.close();`], { allowFail: true });
    const health = sh(["ip", "netns", "exec", a.ns, "curl", "-sf", "--max-time", "3", `http://${seedIp}:7443/v1/health`], { allowFail: true });
    expect(health).toContain("ok");
    seed.assertHealthySince(mark);
    // The tunnel still works after the garbage.
    await waitFor("ping after garbage", () => ping(a, b.ipv6, 1), 10000);
    seed.assertHealthySince(mark);
  });
});
