// Whole nodes in one process (like wireguard-go's TestTwoDevicePing; the fixture: test/lib/whole.ts): real
// identities, handshakes, sessions, router, datapath and admission, over in-memory links and memory TUNs.
// No root, no werift, no seeds.
import { afterEach, describe, expect, test } from "bun:test";
import { parseIpv4 } from "../identity/address.ts";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { setLogLevel } from "../log.ts";
import { MemoryNet } from "../tether/memory.ts";
import { answerPings, ping, WholeNodes, type Whole } from "../../test/lib/whole.ts";

setLogLevel((process.env.TRELLIS_TEST_LOG as "debug") ?? "error");

const nodes = new WholeNodes();
afterEach(() => nodes.stop());

/** Identities for up to three nodes (fixed seeds: the same ids every run), made before any clock starts. */
const IDS = Array.from({ length: 3 }, (_, i) => generateIdentity(new Uint8Array(128).fill(i + 1)));
const identities = (n: number) => IDS.slice(0, n);

/** Build and start whole nodes over `net`, each allowing all the others; `relays` names who relays. */
const start = (net: MemoryNet, ids: ReturnType<typeof identities>, relays: Set<number> = new Set()) => nodes.start(net, ids, { prefix: "n", relays });

/** CPU time (user + system) this process spent since `from`, in ms: the figure load does not inflate. */
const cpuMs = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return ((d.user + d.system) / 1000).toFixed(0);
};
/** Handshakes the nodes started, in all (each an ML-DSA signature and verification on both sides). */
const handshakes = (ws: Whole[]) => ws.reduce((n, w) => n + w.node.status().counters.session_handshakesStarted, 0);

/** A UDP-over-IPv4 packet from a to b carrying `seq` and `size` bytes. */
function udp4(a: string, b: string, seq: number, size: number): Uint8Array {
  const p = new Uint8Array(20 + 8 + size);
  p[0] = 0x45;
  new DataView(p.buffer).setUint16(2, p.length);
  p[8] = 64;
  p[9] = 17;
  p.set(parseIpv4(a)!, 12);
  p.set(parseIpv4(b)!, 16);
  new DataView(p.buffer).setUint32(28, seq);
  for (let i = 4; i < size; i++) p[28 + i] = (seq * 7 + i) & 255;
  return p;
}

/** Send `n` IPv4 packets of `size` bytes from a to b; resolves when b's TUN has them all, in order and intact. */
async function transfer(a: Whole, b: Whole, n: number, size: number): Promise<void> {
  const want = Array.from({ length: n }, (_, i) => udp4(a.ipv4, b.ipv4, i, size));
  const got: Uint8Array[] = [];
  const before = b.tun.onWrite;
  b.tun.onWrite = (p) => (p[0] >> 4 === 4 && p[9] === 17 ? got.push(p) : before?.(p));
  for (let i = 0; i < n; i += 16) {
    a.tun.inject(want.slice(i, i + 16));
    await Bun.sleep(0);
  }
  const end = performance.now() + 5000;
  while (got.length < n && performance.now() < end) await Bun.sleep(2);
  b.tun.onWrite = before;
  expect(got.length).toBe(n);
  for (let i = 0; i < n; i++) expect(Buffer.compare(got[i], want[i])).toBe(0);
}

describe("whole nodes in one process", () => {
  test("two nodes: ping both ways (IPv6), a transfer (IPv4), the path is direct", async () => {
    const t0 = performance.now(), cpu0 = process.cpuUsage();
    const T = (m: string) => console.log(`${(performance.now() - t0).toFixed(0)} ms: ${m}`);
    const [a, b] = await start(new MemoryNet(), identities(2));
    answerPings(a);
    answerPings(b);
    T("started");
    await ping(a, b, 1);
    T("pinged a→b");
    await ping(b, a, 2);
    T("pinged b→a");
    await transfer(a, b, 256, 1200);
    T("transferred");
    const pa = (await a.node.ping(b.id)).path;
    expect(pa).toBe("direct");
    expect(a.node.status().peers.find((p) => p.id === b.id)?.session).toBe(true);
    // Well under a second on an idle machine (one ML-DSA handshake is most of it); printed, not asserted
    // (a loaded runner can take seconds for one handshake).
    console.log(`two nodes: up, pinged both ways, moved 256 × 1200 B in ${(performance.now() - t0).toFixed(0)} ms (${cpuMs(cpu0)} ms CPU, ${handshakes([a, b])} handshake(s))`);
  }, 20_000);

  test("three nodes, one a relay: A and B without a direct link reach each other through R; when the direct link dies, traffic fails over to R", async () => {
    const T = (m: string) => console.log(`${(performance.now() - t0).toFixed(0)} ms: ${m}`);
    const t0 = performance.now(), cpu0 = process.cpuUsage();
    const ids = identities(3);
    const net = new MemoryNet({ relays: [ids[2].public.id] });
    const [A0, B0] = [ids[0].public.id, ids[1].public.id];
    // First: no direct link between A and B at all: everything through R (keys from R's records).
    net.cut(A0, B0);
    const [a, b, r] = await start(net, ids, new Set([2]));
    answerPings(a);
    answerPings(b);
    T("started");
    await ping(a, b, 1);
    T("pinged");
    expect((await a.node.ping(b.id)).path).toBe(`relay:${r.id}`);
    await transfer(a, b, 128, 1200);
    const relayOnly = performance.now() - t0;
    T("transferred");

    // Then: a direct link; traffic moves to it; cut it and traffic goes on through R.
    net.heal(A0, B0);
    (a.node as unknown as { links: { connect(p: NodeId): void } }).links.connect(b.id);
    T("healed");
    expect((await a.node.ping(b.id)).path).toBe("direct");
    T("direct");
    const t1 = performance.now();
    net.cut(A0, B0);
    await ping(a, b, 2).catch((e) => {
      for (const w of [a, b, r]) console.log(JSON.stringify(w.node.status().counters), JSON.stringify(w.node.status().links));
      throw e;
    });
    await transfer(a, b, 128, 1200);
    const failover = performance.now() - t1;
    expect((await a.node.ping(b.id)).path).toBe(`relay:${r.id}`);
    expect(r.node.status().relay.forwarded).toBeGreaterThan(256);
    const wall = performance.now() - t0;
    console.log(`three nodes: relay path in ${relayOnly.toFixed(0)} ms, failover + ping + transfer in ${failover.toFixed(0)} ms, all in ${wall.toFixed(0)} ms (${cpuMs(cpu0)} ms CPU, ${handshakes([a, b, r])} handshake(s))`);
  }, 30_000);
});
