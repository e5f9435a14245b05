// e2e: the fast channel (sealed datagrams on the ICE pair) and the MTU. Two nodes and a seed in
// namespaces behind one router: traffic rides the fast channel; with its datagrams blocked at the
// router (the WebRTC data channel still works) traffic goes on over the data channel and comes back
// when the block lifts; with an underlay of MTU 1280, and with a path that starts dropping large
// datagrams mid-transfer, TCP transfers arrive hash-checked and a 1472-byte UDP datagram arrives whole.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { pairWithSeed, teardown, tempDir, waitFor, type TestNode } from "../lib/nodes.ts";
import { tcpTransfer, udpDatagram } from "../lib/transfer.ts";

setDefaultTimeout(120_000);
const root = e2eReady(import.meta.file);

/** b's fast channel as a sees it in status. */
function fast(a: TestNode, b: TestNode): { state: string; mtu: number; txPackets: number; rxPackets: number; fallbacks: number } | undefined {
  return a.api("/v1/status").links?.find((l: any) => l.peer === b.id)?.fast ?? undefined;
}

async function directSession(x: TestNode, y: TestNode): Promise<void> {
  await waitFor(`${x.spec.name} → ${y.spec.name} direct session`, () => x.api("/v1/status").peers?.find((p: any) => p.id === y.id && p.session && p.path === "direct"), 30_000);
}

/** nftables at the router: drop forwarded UDP whose first payload byte is a fast-channel type. */
function blockFast(net: TestNet, on: boolean): void {
  if (!on) return void sh(["ip", "netns", "exec", net.router, "nft", "delete", "table", "inet", "trl_fast"], { allowFail: true });
  const rules = `table inet trl_fast {\n chain drops {\n  type filter hook forward priority -10; policy accept;\n  meta l4proto udp @th,64,8 { 0xc4, 0xc5, 0xca } drop\n }\n}\n`;
  sh(["ip", "netns", "exec", net.router, "nft", "-f", "-"], { input: rules });
}

/**
 * nftables at the router: a path-MTU black hole, dropping forwarded IPv4 UDP longer than `bytes`.
 * The hosts' eth0 cut UDP GSO batches into datagrams as a NIC does (on a veth a batch crosses whole,
 * and the rule would see its total length, not each datagram's); `bytes` 0 lifts both.
 */
function blackHole(net: TestNet, bytes: number): void {
  for (const h of net.hosts.values()) sh(["ip", "-n", h.ns, "link", "set", "eth0", "gso_max_segs", bytes ? "1" : "65535"]);
  if (!bytes) return void sh(["ip", "netns", "exec", net.router, "nft", "delete", "table", "inet", "trl_mtu"], { allowFail: true });
  const rules = `table inet trl_mtu {\n chain drops {\n  type filter hook forward priority -10; policy accept;\n  meta l4proto udp ip length > ${bytes} drop\n }\n}\n`;
  sh(["ip", "netns", "exec", net.router, "nft", "-f", "-"], { input: rules });
}

/** Set the MTU of every underlay veth (hosts' eth0 and the router's side). */
function underlayMtu(net: TestNet, mtu: number): void {
  for (const h of net.hosts.values()) {
    sh(["ip", "-n", h.ns, "link", "set", "eth0", "mtu", String(mtu)]);
    sh(["ip", "-n", net.router, "link", "set", `h${h.subnet}`, "mtu", String(mtu)]);
  }
}

describe.skipIf(!root)("the fast channel and the MTU (namespaces)", () => {
  let net: TestNet, dir: string;
  let seed: TestNode, a: TestNode, b: TestNode;

  beforeAll(async () => {
    dir = tempDir("e2e-fast");
    net = new TestNet("fast");
    ({ seed, a, b } = pairWithSeed(net, dir));
    await seed.start();
    await Promise.all([a.start(), b.start()]);
    await directSession(a, b);
    await directSession(b, a);
  });

  afterAll(async () => {
    await teardown([a, b, seed], net, dir);
  });

  test("packets ride the fast channel; its MTU is the underlay's", async () => {
    await waitFor("fast channel up", () => fast(a, b)?.state === "up" && fast(a, b)!.mtu > 0);
    const before = fast(a, b)!;
    const { sent, recv } = await tcpTransfer(a, b, "100.64.0.3", 5301, 10 * 1024 * 1024);
    expect(recv).toEqual(sent);
    const after = fast(a, b)!;
    // 10 MB is ~7,000 full packets: nearly all of them went as datagrams.
    expect(after.txPackets - before.txPackets).toBeGreaterThan(6_000);
    expect(after.mtu).toBe(1472); // 1500 - IPv4 - UDP
    // The TUN is 1500; the sender was told the size that fits (its route cache shows it).
    expect(a.api("/v1/status").node.mtu).toBe(1500);
    expect(a.api("/v1/status").counters.too_big_sent).toBeGreaterThan(0);
    expect(sh(["ip", "netns", "exec", a.ns, "ip", "route", "get", "100.64.0.3"])).toMatch(/mtu 14[0-9][0-9]/);
  });

  test("fast datagrams blocked: traffic goes on over the data channel, and comes back when they pass again", async () => {
    await waitFor("fast channel up", () => fast(a, b)?.state === "up");
    const fallbacks = fast(a, b)!.fallbacks;
    let sawDown = false, txDuringBlock = 0;
    // Pings every 50 ms across the block: the longest run of lost replies is the outage (printed, not asserted).
    const pinger = Bun.spawn(["ip", "netns", "exec", a.ns, "ping", "-i", "0.05", "-c", "60", "-W", "1", "100.64.0.3"], { stdout: "pipe" });
    const { sent, recv } = await tcpTransfer(a, b, "100.64.0.3", 5302, 40 * 1024 * 1024, async () => {
      await Bun.sleep(300);
      blockFast(net, true);
      const t0 = performance.now();
      await waitFor("fast channel down", () => fast(a, b)?.state === "down", 5_000);
      sawDown = true;
      console.log(`fast channel declared down ${Math.round(performance.now() - t0)} ms after the block (a's side)`);
      const tx0 = fast(a, b)!.txPackets;
      await Bun.sleep(1_500);
      txDuringBlock = fast(a, b)!.txPackets - tx0;
      blockFast(net, false);
    });
    expect(sawDown).toBe(true);
    expect(recv).toEqual(sent);
    const seqs = [...(await new Response(pinger.stdout).text()).matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
    expect(seqs.length).toBeGreaterThan(30);
    const gap = Math.max(...seqs.slice(1).map((q, i) => q - seqs[i])) - 1;
    console.log(`pings lost across the block: at most ${gap} in a row (${gap * 50} ms at 50 ms apart)`);
    expect(txDuringBlock).toBe(0); // nothing went as a datagram while they were blocked
    expect(fast(a, b)!.fallbacks).toBeGreaterThan(fallbacks);
    await waitFor("fast channel back up", () => fast(a, b)?.state === "up", 5_000);
    expect(a.logs()).toMatch(/fast channel down .*packets take the data channel/);
    // And the data path works on it again.
    const tx = fast(a, b)!.txPackets;
    expect(sh(["ip", "netns", "exec", a.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "100.64.0.3"], { allowFail: true })).toMatch(/[1-9] received/);
    expect(fast(a, b)!.txPackets).toBeGreaterThan(tx);
  });

  test("a path that drops large datagrams mid-transfer: the MTU comes down and TCP completes hash-checked", async () => {
    await waitFor("fast channel up at full size", () => fast(a, b)?.state === "up" && fast(a, b)!.mtu === 1472);
    try {
      // Large enough to outlast the black hole's start at offloaded speeds (30 MB took under 300 ms).
      const { sent, recv } = await tcpTransfer(a, b, "100.64.0.3", 5303, 100 * 1024 * 1024, async () => {
        await Bun.sleep(100);
        blackHole(net, 1300);
      });
      expect(recv).toEqual(sent);
      expect(fast(a, b)!.mtu).toBeLessThanOrEqual(1300 - 28);
      expect(a.logs()).toMatch(/fast channel mtu 1472 → \d+/);
      // A datagram that fills the 1500-byte TUN still arrives whole.
      const u = await udpDatagram(a, b, "100.64.0.3", 5304, 1472);
      expect(u.recv).toEqual(u.sent);
    } finally {
      blackHole(net, 0);
    }
  });

  test("an underlay of MTU 1280: a TCP transfer and a 1472-byte UDP datagram arrive whole", async () => {
    underlayMtu(net, 1280);
    try {
      await waitFor("fast channel mtu fits 1280", () => fast(a, b)?.state === "up" && fast(a, b)!.mtu <= 1280 - 28, 60_000);
      const { sent, recv } = await tcpTransfer(a, b, "100.64.0.3", 5305, 10 * 1024 * 1024);
      expect(recv).toEqual(sent);
      const u = await udpDatagram(a, b, "100.64.0.3", 5306, 1472);
      expect(u.recv).toEqual(u.sent);
      const v6 = await udpDatagram(a, b, b.ipv6, 5307, 1452);
      expect(v6.recv).toEqual(v6.sent);
    } finally {
      underlayMtu(net, 1500);
    }
  });
});
