// Who may use an exit node or a subnet router (issue 14): members of a network whose root granted it that right, allow-listed nodes, itself — for traffic, DNS and the advert alike.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaults } from "../config/schema.ts";
import { ipv6Of } from "../identity/address.ts";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import type { Membership } from "../trust/certificate.ts";
import { EXIT_GRANT } from "../trust/subnet.ts";
import { decodeAdvert, encodeQuery } from "../route/subnets.ts";
import type { Runner } from "./hostnet.ts";
import { Routes } from "./routes.ts";

const [self, alice, bob, carol, dave] = [1, 2, 3, 4, 5].map((n) => generateIdentity(new Uint8Array(128).fill(n)).public.id);
const HOME = "aa".repeat(16), OTHER = "bb".repeat(16);
const member = (nodeId: NodeId, networkId: string): Membership => ({ networkId, nodeId, name: nodeId.slice(0, 6), ipv4Prefix: 10, tags: [], subnets: [], notBefore: 0, notAfter: 2 ** 40 });
// alice: a member of the network that granted this node --exit. bob: a member of another network this
// node is also in, whose root granted it nothing. carol: allow-listed. dave: nobody (a stranger).
const memberships = new Map([[alice, member(alice, HOME)], [bob, member(bob, OTHER)]]);
const v4 = new Map([["100.64.0.2", alice], ["100.64.0.3", bob], ["100.64.0.4", carol], ["100.64.0.1", self]]);

/** A host whose default route leaves by lo (its operstate is "unknown": healthy); every other command succeeds silently (so the LAN has no device here: the adverts list no prefix, the forwarding decision is what is tested). */
const runner: Runner = {
  run: (cmd) => {
    const c = cmd.join(" ");
    if (c === "ip -j route show default") return { ok: true, out: JSON.stringify([{ dev: "lo", gateway: "192.0.2.1" }]), err: "" };
    return { ok: true, out: cmd.includes("-j") ? "[]" : "", err: "" };
  },
};
const LAN = { family: 4 as const, address: "192.168.50.0", prefix: 24 };

const dirs: string[] = [];
const live: Routes[] = [];
afterEach(() => {
  for (const r of live.splice(0)) r.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function exitNode() {
  const dir = mkdtempSync(join(tmpdir(), "trellis-routes-"));
  dirs.push(dir);
  const config = defaults(null);
  config.node.stateDir = dir;
  config.routes.exit = true;
  config.routes.advertise = [LAN];
  const sent: [NodeId, Uint8Array][] = [];
  const routes = new Routes({
    config, self, grant: [...EXIT_GRANT, LAN], send: (to, p) => sent.push([to, p]), reach: () => true, resetSession: () => {}, ask: () => {},
    membership: (id) => memberships.get(id), grantIn: (net) => (net === HOME ? [...EXIT_GRANT, LAN] : []), allowListed: (id) => id === carol,
    peerAt: (addr) => v4.get(addr) ?? [self, alice, bob, carol].find((id) => ipv6Of(id) === addr),
    name: () => null, underlay: () => [], rxBytes: () => 0, isOverlay4: (p, off) => p[off] === 100 && (p[off + 1] & 0xc0) === 64, log: () => {}, runner,
  });
  live.push(routes);
  routes.start("trellis0");
  return { routes, sent };
}

/** An IPv4 header to `dst` (only the fields the decision reads). */
function packetTo(dst: number[]): Uint8Array {
  const p = new Uint8Array(20);
  p[0] = 0x45;
  p.set(dst, 16);
  return p;
}

describe("exit node and subnet router: who may use them", () => {
  // Attack: a member of another network this node shares (its root never granted the exit right or
  // the LAN) sends its internet traffic, its DNS queries and packets for the LAN through it. Before: the
  // node forwarded all of it for any member the firewall let through, and offered it to anyone who asked.
  test("a member of a network that granted no right gets no forwarding (internet or LAN), no DNS forwarding and nothing in the advert", () => {
    const { routes, sent } = exitNode();
    const internet = packetTo([8, 8, 8, 8]);
    expect(routes.forwards(bob, internet, 16, 4)).toBe(false);
    expect(routes.forwards(dave, internet, 16, 4)).toBe(false);
    const dns = routes.dnsForward(() => false)!;
    expect(dns.from(ipv6Of(bob))).toBe(false);
    expect(dns.from("100.64.0.3")).toBe(false);
    expect(dns.from("::ffff:100.64.0.3")).toBe(false);
    expect(dns.from("100.64.0.9")).toBe(false); // an overlay address nobody we know holds
    expect(routes.control(bob, encodeQuery(1))).toBe(true);
    const [to, advert] = sent.at(-1)!;
    expect(to).toBe(bob);
    expect(decodeAdvert(advert)).toMatchObject({ exit: false, dns: false });
    // Nor the LAN this node routes for: that root granted it to home's members, not to bob's network.
    expect(routes.forwards(bob, packetTo([192, 168, 50, 10]), 16, 4)).toBe(false);
  });

  test("a member of the granting network, an allow-listed node and the exit itself may use it", () => {
    const { routes, sent } = exitNode();
    const internet = packetTo([8, 8, 8, 8]);
    for (const id of [alice, carol, self]) expect(routes.forwards(id, internet, 16, 4)).toBe(true);
    const dns = routes.dnsForward(() => false)!;
    for (const a of [ipv6Of(alice), "100.64.0.2", "::ffff:100.64.0.2", ipv6Of(carol), "100.64.0.1"]) expect(dns.from(a)).toBe(true);
    expect(dns.from("192.0.2.7")).toBe(false); // not an overlay address at all
    routes.control(alice, encodeQuery(2));
    expect(decodeAdvert(sent.at(-1)![1])).toMatchObject({ exit: true, dns: true });
    for (const id of [alice, carol, self]) expect(routes.forwards(id, packetTo([192, 168, 50, 10]), 16, 4)).toBe(true);
    // The overlay itself is never forwarded to the uplink, whoever asks.
    expect(routes.forwards(alice, packetTo([100, 64, 0, 3]), 16, 4)).toBe(false);
  });
});

// A member that accepts routes asks its relays for routers (members granted subnets) by index, and each
// question costs the relay a walk over its members. It asked 8 indices every second while it knew no
// router: in a network without routers, a thousand such members asked a relay 8,000 questions a second.
describe("a member finding routers", () => {
  function acceptingMember() {
    const dir = mkdtempSync(join(tmpdir(), "trellis-routes-"));
    dirs.push(dir);
    const config = defaults(null);
    config.node.stateDir = dir;
    config.routes.accept = true;
    let t = 0;
    const asked: number[][] = [];
    const routes = new Routes({
      config, self, grant: [], send: () => {}, reach: () => true, resetSession: () => {},
      ask: (q) => ("router" in q ? asked.at(-1)!.push(q.router) : undefined),
      membership: () => undefined, grantIn: () => [], allowListed: () => false, peerAt: () => undefined,
      name: () => null, underlay: () => [], rxBytes: () => 0, isOverlay4: () => false, log: () => {}, runner, now: () => t,
    });
    live.push(routes);
    routes.start("trellis0");
    /** Node ticks (1 s apart) for `seconds`; the indices asked at each. */
    const run = (seconds: number) => {
      const out: number[][] = [];
      for (let i = 0; i < seconds; i++, t += 1000) {
        asked.push([]);
        routes.tick();
        out.push(asked.at(-1)!);
      }
      return out;
    };
    return { routes, run };
  }

  test("with no router anywhere: one question, asked ever less often (at most 8 s apart)", () => {
    const { run } = acceptingMember();
    const minute = run(60);
    const questions = minute.flat();
    expect(questions.every((i) => i === 0)).toBe(true);
    // 0, 1, 3, 7, 15, then every 8 s: 10 in the first minute (480 before).
    expect(minute.flatMap((q, s) => (q.length ? [s] : []))).toEqual([0, 1, 3, 7, 15, 23, 31, 39, 47, 55]);
  });

  test("a router found: the next index is asked for a second later, then every 10 s while nothing new comes", () => {
    const { routes, run } = acceptingMember();
    run(4); // asks at 0, 1, 3
    routes.addRouter(alice);
    const after = run(12);
    expect(after[0]).toEqual([0, 1]); // the ask that found alice was at 3 s: the next one a second later
    routes.addRouter(bob);
    const more = run(25);
    expect(more[0]).toEqual([0, 1, 2]);
    expect(more.flatMap((q, s) => (q.length ? [s] : []))).toEqual([0, 10, 20]);
    expect(more[10]).toEqual([0, 1, 2]);
  });
});
