// e2e: a network works cold, the way the README tells it (issue 12). A seed runs config/seed.toml as
// shipped (it joined the offline way); members join by invite and list only the seed; the very first
// traffic between two members is a ping to the other's overlay IPv4 address, and it is answered.
// Then, each between members that never talked: `trellis ping NAME`, DNS through the node, ping6,
// a name looked up through the node's own DNS, and a TCP transfer checked by hash. An outsider (a
// node of another network on the same seed) reaches nobody. Real nodes in namespaces.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { BUN, ROOT, TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";
import { tcpTransfer } from "../lib/transfer.ts";

setDefaultTimeout(120_000);
const root = e2eReady(import.meta.file);
let net: TestNet, dir: string, rootDir: string, seedUrl: string;
const nodes: Record<string, TestNode> = {};

const ok = (r: { code: number; out: string; err: string }, what: string) => {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.err}${r.out}`);
  return r.out.trim();
};
/** ping from `from`; true when a reply came. */
// Echo requests every 0.5 s for up to 30 s, stopping at the first reply. The first packets wait for the
// lookup instead of being dropped (each test checks the node's no-route counter stays 0); one of them may
// still be lost in transit on a loaded machine, as any datagram may.
const ping = (from: TestNode, addr: string, args: string[] = ["-c", "1", "-i", "0.5", "-w", "30"]) =>
  / [1-9]\d* received/.test(sh(["ip", "netns", "exec", from.ns, addr.includes(":") ? "ping6" : "ping", ...args, addr], { allowFail: true }));
/** `dig @server name A +short` (no dig here): a query from `from`, sent again every 4 s as dig does, the A answers as text ("" for none). */
function dig(from: TestNode, server: string, name: string): string {
  const labels = name.split(".").flatMap((l) => [l.length, ...Buffer.from(l)]);
  const q = JSON.stringify([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
  const script = `const s = await Bun.udpSocket({ socket: { data(_s, d) { console.log(Buffer.from(d).toString("hex")); process.exit(0); } } }); const q = Uint8Array.from(${q}); s.send(q, 53, "${server}"); setInterval(() => s.send(q, 53, "${server}"), 4000); setTimeout(() => process.exit(1), 24000);`;
  const hex = sh(["ip", "netns", "exec", from.ns, BUN, "-e", script], { allowFail: true }).trim();
  if (!hex) return "";
  const b = Buffer.from(hex, "hex");
  const answers = b.readUInt16BE(6);
  let off = 12 + labels.length + 1 + 4;
  const out: string[] = [];
  for (let i = 0; i < answers && off + 12 <= b.length; i++) {
    const len = b.readUInt16BE(off + 10);
    if (b.readUInt16BE(off + 2) === 1 && len === 4) out.push([...b.subarray(off + 12, off + 16)].join("."));
    off += 12 + len;
  }
  return out.join("\n");
}
const session = (x: TestNode, y: TestNode) => x.api("/v1/status").peers?.find((p: any) => p.id === y.id)?.session === true;
/** Packets held while a member lookup ran, and how many of those were dropped. */
const held = (n: TestNode) => {
  const c = n.api("/v1/status").counters;
  return { held: c.member_lookup_held, dropped: c.member_lookup_dropped };
};
const everSession = (x: TestNode, y: TestNode) => x.logs().includes(`session with ${y.id}`);

describe.skipIf(!root)("a network works cold (namespaces)", () => {
  beforeAll(async () => {
    dir = tempDir("e2e-cold");
    net = new TestNet("cold");
    for (const h of ["s", "a", "b", "c", "d", "x", "r2"]) net.addHost(h);
    rootDir = join(dir, "root");
    seedUrl = `http://${net.host("s").ip}:7443`;
    // 1. The network, and the nodes (init: TestNode makes each identity).
    const s = (nodes.s = new TestNode(net, { host: "s", name: "s" }, dir));
    ok(s.cli(["network", "create", "lab", "--out", rootDir]), "network create");
    for (const h of ["a", "b", "c", "d", "x"]) nodes[h] = new TestNode(net, { host: h, name: h, seeds: [seedUrl] }, dir);
    // 2. The seed joins the offline way and runs config/seed.toml as shipped (state_dir aside).
    const req = ok(s.cli(["join", "--request", "--name", "s", "--state", join(s.dir, "state")]), "join --request");
    const cert = ok(s.cli(["sign", req, "--root", rootDir, "--ipv4", "100.64.0.1"]), "sign");
    ok(s.cli(["join", "--install", cert, "--state", join(s.dir, "state")]), "join --install");
    const shipped = readFileSync(join(ROOT, "config/seed.toml"), "utf8");
    expect(shipped).not.toMatch(/^\[network\]/m); // no [network] section: the seed lists no seeds
    writeFileSync(s.configPath, shipped.replace(/^state_dir = .*$/m, `state_dir = ${JSON.stringify(join(s.dir, "state"))}`));
    await s.start();
    // 3. Members join by invite; their configs list only the seed (TestNode writes seeds and nothing else
    // that matters: allow = [], relay off).
    for (const [h, ip] of [["a", "100.64.0.2"], ["b", "100.64.0.3"], ["c", "100.64.0.4"], ["d", "100.64.0.5"]]) {
      const token = ok(nodes[h].cli(["invite", "--root", rootDir, "--name", h, "--ipv4", ip, "--seed", seedUrl]), `invite ${h}`);
      ok(nodes[h].cli(["join", token, "--state", join(nodes[h].dir, "state")]), `join ${h}`);
    }
    // x: a node of another network with an address in the same range, on the same seed; it knows a's id.
    const other = join(dir, "other-root");
    ok(s.cli(["network", "create", "other", "--out", other]), "network create other");
    const xreq = ok(nodes.x.cli(["join", "--request", "--name", "x", "--state", join(nodes.x.dir, "state")]), "x request");
    ok(nodes.x.cli(["join", "--install", ok(s.cli(["sign", xreq, "--root", other, "--ipv4", "100.64.0.9"]), "sign x"), "--state", join(nodes.x.dir, "state")]), "x install");
    nodes.x.spec.allow = [nodes.a.id];
    nodes.x.writeConfig();
    await Promise.all(["a", "b", "c", "d", "x"].map((h) => nodes[h].start()));
    // Members attach to the seed as their relay (nothing else is configured anywhere).
    for (const h of ["a", "b", "c", "d"]) await waitFor(`${h} linked to the seed relay`, () => nodes[h].api("/v1/relays").some?.((r: any) => r.peer === s.id && r.alive), 30000);
  });

  afterAll(async () => {
    await teardown(Object.values(nodes), net, dir);
  });

  test("the seed (config/seed.toml as shipped) serves its members as a relay", () => {
    expect(nodes.s.api("/v1/status").node.seed).toBe(true);
    expect(nodes.a.logs()).not.toContain(`${nodes.s.id} is not registered there`);
  });

  test("the very first packet between two members, a ping to the other's IPv4, is answered", () => {
    expect(everSession(nodes.a, nodes.b)).toBe(false);
    expect(ping(nodes.a, "100.64.0.3")).toBe(true);
    expect(held(nodes.a).held).toBeGreaterThan(0); // the first packet waited for the lookup...
    expect(held(nodes.a).dropped).toBe(0); // ...and none was dropped
  });

  test("trellis ping NAME works cold", () => {
    expect(everSession(nodes.c, nodes.b)).toBe(false);
    const r = nodes.c.cli(["ping", "b", "--count", "1", "--timeout", "25", "--config", nodes.c.configPath]);
    expect(r.code).toBe(0);
  });

  test("DNS through a member's address answers cold (d asks b for a.lab)", () => {
    expect(everSession(nodes.d, nodes.b)).toBe(false);
    expect(dig(nodes.d, "100.64.0.3", "a.lab")).toBe("100.64.0.2");
  });

  test("ping6 to a member's overlay address works cold", () => {
    expect(everSession(nodes.b, nodes.c) || everSession(nodes.c, nodes.b)).toBe(true); // (c pinged b by name above)
    expect(everSession(nodes.a, nodes.d)).toBe(false);
    expect(ping(nodes.a, nodes.d.ipv6)).toBe(true);
  });

  test("a node's own DNS names a member it never met (d asks itself for c.lab), then ping by IPv4", () => {
    expect(everSession(nodes.d, nodes.c)).toBe(false);
    expect(dig(nodes.d, "100.64.0.5", "c.lab")).toBe("100.64.0.4");
    expect(ping(nodes.d, "100.64.0.4")).toBe(true);
  });

  test("the seed's own IPv4 answers cold too (it names itself), and trellis ping by IPv4", () => {
    expect(everSession(nodes.b, nodes.s)).toBe(false);
    expect(ping(nodes.b, "100.64.0.1")).toBe(true);
    expect(everSession(nodes.c, nodes.a)).toBe(false);
    expect(nodes.c.cli(["ping", "100.64.0.2", "--count", "1", "--timeout", "25", "--config", nodes.c.configPath]).code).toBe(0);
  });

  test("a TCP transfer over the overlay IPv4 arrives whole", async () => {
    const { sent, recv } = await tcpTransfer(nodes.a, nodes.b, "100.64.0.3", 5201, 4_000_000);
    expect(recv.bytes).toBe(4_000_000);
    expect(recv.sha256).toBe(sent.sha256);
  });

  test("the outsider reaches nobody", () => {
    expect(ping(nodes.x, "100.64.0.2", ["-c", "2", "-W", "3"])).toBe(false);
    expect(ping(nodes.x, nodes.a.ipv6, ["-c", "2", "-W", "3"])).toBe(false);
    expect(nodes.x.cli(["ping", nodes.a.id, "--count", "1", "--config", nodes.x.configPath]).code).not.toBe(0);
    expect(session(nodes.a, nodes.x)).toBe(false);
    expect(nodes.x.api("/v1/status").peers.some((p: any) => p.ipv4 === "100.64.0.2")).toBe(false);
  });

  test("a relay that holds a member's certificate tells a non-member neighbour nothing about its address", async () => {
    // r: a member of lab that relays, and allow-lists x, so x can link to it and ask; a links to r as
    // its second relay (learned from the seed's gossip), so r holds a's certificate.
    const r = (nodes.r = new TestNode(net, { host: "r2", name: "r", relay: true, seeds: [seedUrl], allow: [nodes.x.id] }, dir));
    const token = ok(r.cli(["invite", "--root", rootDir, "--name", "r", "--ipv4", "100.64.0.6", "--seed", seedUrl]), "invite r");
    ok(r.cli(["join", token, "--state", join(r.dir, "state")]), "join r");
    await r.start();
    await nodes.x.stop();
    nodes.x.spec.seeds = [`http://${net.host("r2").ip}:7443`];
    nodes.x.spec.allow = [nodes.a.id, r.id];
    nodes.x.writeConfig();
    await nodes.x.start();
    await waitFor("a linked to r", () => r.logs().includes(`link to ${nodes.a.id} open`), 60000);
    await waitFor("x linked to r", () => nodes.x.api("/v1/relays").some?.((l: any) => l.peer === r.id && l.alive), 60000);
    expect(ping(nodes.x, "100.64.0.2", ["-c", "3", "-W", "3"])).toBe(false);
    expect(nodes.x.api("/v1/status").counters.member_lookup_held).toBeGreaterThan(0); // x did ask...
    await waitFor("r's answer to x", () => r.logs().includes(`member lookup from ${nodes.x.id} for 100.64.0.2: nothing to say`), 10000);
    expect(r.logs()).not.toContain(`member lookup from ${nodes.x.id} for 100.64.0.2: answered`); // ...and learned nothing
    expect(nodes.x.api("/v1/status").peers.some((p: any) => p.ipv4 === "100.64.0.2" || p.id === nodes.a.id && p.name)).toBe(false);
    expect(session(nodes.a, nodes.x)).toBe(false);
  });
});
