// Inside (route by destination) and outside (the key is the route) on hand-made IPv4 and IPv6 packets.
import { describe, expect, test } from "bun:test";
import { ipv6BytesOf, parseIpv4 } from "../identity/address.ts";
import { parseNodeId, type NodeId, type PublicIdentity } from "../identity/identity.ts";
import { PeerTable } from "./peers.ts";
import { MemoryRoute, MemorySession, OpenPolicy } from "./ports.ts";
import { createMemoryTun } from "../tun/memory.ts";
import { TYPE_SIGNAL } from "../route/frame.ts";
import { Hold, HOLD_MS } from "./hold.ts";
import { Inside } from "./inside.ts";
import { Outside } from "./outside.ts";
import { ipv4KeyOf } from "./ip.ts";

const ME = parseNodeId("11111111111111111111111111111111");
const A = parseNodeId("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
const B = parseNodeId("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");

function v6(src: Uint8Array, dst: Uint8Array): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = 0x60;
  p[6] = 58;
  p.set(src, 8);
  p.set(dst, 24);
  return p;
}
function v4(src: string, dst: string): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p[9] = 1;
  p.set(parseIpv4(src)!, 12);
  p.set(parseIpv4(dst)!, 16);
  return p;
}

function setup() {
  const peers = new PeerTable();
  for (const id of [A, B]) peers.ensure(id).pub = { id } as PublicIdentity;
  expect(peers.applyClaims(A, { name: "alpha", ipv4: "100.64.0.2" })).toBeUndefined();
  expect(peers.applyClaims(B, { name: "bravo", ipv4: "100.64.0.3" })).toBeUndefined();
  const session = new MemorySession(), route = new MemoryRoute(), tun = createMemoryTun();
  route.paths.add(A).add(B);
  const control: [NodeId, Uint8Array][] = [], signals: [NodeId, Uint8Array][] = [];
  const inside = new Inside(peers, { session, route, tun, policy: new OpenPolicy(false) });
  const outside = new Outside(peers, { ipv6: ipv6BytesOf(ME), ipv4Keys: [ipv4KeyOf(parseIpv4("100.64.0.1")!)] }, {
    session, route, tun, policy: new OpenPolicy(),
    control: (from, p) => control.push([from, p]),
    signal: (from, e) => signals.push([from, e]),
  });
  return { peers, inside, outside, session, route, sent: session.sent, written: tun.written, control, signals };
}

describe("inside: route by destination", () => {
  test("overlay IPv6 and claimed IPv4 destinations go to their peer; others are dropped", () => {
    const { inside, sent } = setup();
    inside.fromTun([
      v6(ipv6BytesOf(ME), ipv6BytesOf(A)),
      v4("100.64.0.1", "100.64.0.3"),
      v4("100.64.0.1", "100.64.0.9"),
      v6(ipv6BytesOf(ME), Uint8Array.from([0xfd, 0, ...new Array(14).fill(1)])),
      new Uint8Array([0x12, 0x34]),
    ]);
    // Same map key as A (first 48 bits of the id) but another address: not A.
    const nearA = ipv6BytesOf(A);
    nearA[15] ^= 1;
    inside.fromTun([v6(ipv6BytesOf(ME), nearA)]);
    expect(sent.map(([to]) => to)).toEqual([A, B]);
    expect(inside.stats).toEqual({ txPackets: 2, noRoute: 3, notIp: 1 });
  });
});

describe("inside: a TUN batch goes on in runs per peer", () => {
  test("consecutive packets to one peer are one sendBatch; order is kept per peer and overall", () => {
    const { inside, session, sent } = setup();
    const toA = (i: number) => { const p = v6(ipv6BytesOf(ME), ipv6BytesOf(A)); p[40] = i; return p; };
    const toB = (i: number) => { const p = v4("100.64.0.1", "100.64.0.3"); p[20] = i; return p; };
    inside.fromTun([toA(1), toA(2), toA(3), toB(4), v4("100.64.0.1", "100.64.0.9"), toB(5), toA(6)]);
    expect(session.batches).toEqual([[A, 3], [B, 2]]);
    expect(sent.map(([to, p]) => [to, p[p[0] >> 4 === 6 ? 40 : 20]])).toEqual([[A, 1], [A, 2], [A, 3], [B, 4], [B, 5], [A, 6]]);
    // Outside a batch (a held packet going out when its path comes up), one by one at once.
    inside.send(B, toB(7));
    expect(sent.length).toBe(7);
    expect(session.batches.length).toBe(2);
  });
});

describe("inside: hold while keys, a path or an address's owner are missing", () => {
  test("no path: held (bounded), a direct link asked for; a path comes up: sent in order", () => {
    const { inside, route, sent } = setup();
    route.paths.delete(A);
    for (let i = 0; i < 70; i++) inside.fromTun([v6(ipv6BytesOf(ME), ipv6BytesOf(A))]);
    expect(sent.length).toBe(0);
    expect(inside.holds(A)).toBe(true);
    expect(route.connects.length).toBe(70);
    expect(route.lookups.length).toBe(0);
    route.paths.add(A);
    inside.pathUp();
    expect(sent.length).toBe(64);
    expect(inside.holds(A)).toBe(false);
  });

  test("no keys: held and looked up; a record whose keys do not hash to its id releases nothing", () => {
    const { inside, route, peers, sent, session } = setup();
    const C = parseNodeId("cccccccccccccccccccccccccccccccc");
    peers.ensure(C);
    inside.fromTun([v6(ipv6BytesOf(ME), ipv6BytesOf(C))]);
    expect(route.lookups).toEqual([C]);
    route.paths.add(C);
    // A record whose keys do not hash to its id is ignored (recordIdentity), packets stay held.
    inside.record({ id: C, relay: false, relays: [], hints: [], issued: 0, expires: 1, pub: new Uint8Array(8), bytes: new Uint8Array(0) });
    expect(sent.length).toBe(0);
    expect(session.learned.length).toBe(0);
    expect(inside.holds(C)).toBe(true);
  });

  test("an overlay address of a node we never met: held and looked up by its node-id bits, only inside a network", () => {
    const { inside, route, peers, session } = setup();
    const C = parseNodeId("cccccccccccccccccccccccccccccccc");
    inside.fromTun([v6(ipv6BytesOf(ME), ipv6BytesOf(C))]);
    expect(route.addressLookups.length).toBe(0);
    expect(inside.stats.noRoute).toBe(1);
    let t = 0;
    const hold = new Hold(() => t);
    const member = new Inside(peers, { session, route, tun: createMemoryTun(), policy: new OpenPolicy(true) }, undefined, hold);
    member.fromTun([v6(ipv6BytesOf(ME), ipv6BytesOf(C))]);
    expect(Buffer.from(route.addressLookups[0]).toString("hex")).toBe(C.slice(0, 20));
    expect(hold.stats.address.held).toBe(1);
    // Nobody answers: the packet does not wait for ever.
    t = HOLD_MS + 1;
    member.tick();
    expect(hold.size).toBe(0);
    expect(hold.stats.address.dropped).toBe(1);
  });

  test("too big for the path: the sender is told through the TUN, the packet still goes", () => {
    const { inside, route, sent, written } = setup();
    route.limits.set(A, 1400);
    const big = new Uint8Array(1500);
    big.set(v6(ipv6BytesOf(ME), ipv6BytesOf(A)));
    new DataView(big.buffer).setUint16(4, 1460);
    big[6] = 17;
    inside.fromTun([big]);
    expect(sent.length).toBe(1);
    expect(written.length).toBe(1);
    expect(inside.tooBig.sent).toBe(1);
  });
});

describe("outside: from the route layer", () => {
  test("signals go to the link manager, everything else to the session layer; IP traffic marks the peer active", () => {
    const { outside, session, signals, route } = setup();
    outside.fromRoute(A, Uint8Array.from([TYPE_SIGNAL, 0x7b, 0x7d]));
    outside.fromRoute(A, Uint8Array.from([0xc4, 0, 0, 0]));
    expect(signals).toEqual([[A, Uint8Array.from([0x7b, 0x7d])]]);
    expect(session.received.length).toBe(1);
    outside.fromPeer(A, v6(ipv6BytesOf(A), ipv6BytesOf(ME)));
    outside.fromPeer(A, Uint8Array.from([1, 0, 0, 0, 1]));
    expect(route.activity).toEqual([A]);
  });
});

describe("outside: the key is the route", () => {
  test("a packet from the sender's own addresses to ours is written", () => {
    const { outside, written } = setup();
    outside.fromPeer(A, v6(ipv6BytesOf(A), ipv6BytesOf(ME)));
    outside.fromPeer(A, v4("100.64.0.2", "100.64.0.1"));
    expect(written.length).toBe(2);
  });

  test("a packet whose inner source belongs to another node is dropped and counted", () => {
    const { outside, written, peers } = setup();
    outside.fromPeer(A, v6(ipv6BytesOf(B), ipv6BytesOf(ME)));
    outside.fromPeer(A, v4("100.64.0.3", "100.64.0.1"));
    outside.fromPeer(A, v4("100.64.0.77", "100.64.0.1"));
    expect(written.length).toBe(0);
    expect(outside.stats.spoofed).toBe(3);
    expect(peers.get(A)!.spoofDrops).toBe(3);
  });

  test("a packet for someone else is not written; non-IP payloads go to control", () => {
    const { outside, written, control } = setup();
    outside.fromPeer(A, v6(ipv6BytesOf(A), ipv6BytesOf(B)));
    outside.fromPeer(A, Uint8Array.from([1, 0, 0, 0, 1]));
    expect(written.length).toBe(0);
    expect(outside.stats.notForUs).toBe(1);
    expect(control.length).toBe(1);
  });

  test("a subnet router may send from the subnets its certificate lists, and only those", () => {
    const { outside, written, peers } = setup();
    peers.get(A)!.subnets = [{ family: 4, bytes: parseIpv4("10.9.0.0")!, prefix: 20 }];
    outside.fromPeer(A, v4("10.9.15.3", "100.64.0.1"));
    expect(written.length).toBe(1);
    outside.fromPeer(A, v4("10.9.16.3", "100.64.0.1"));
    outside.fromPeer(B, v4("10.9.1.1", "100.64.0.1"));
    expect(written.length).toBe(1);
    expect(outside.stats.spoofed).toBe(2);
  });

  test("the network policy has the last word: a packet it refuses is dropped and counted, not written", () => {
    const peers = new PeerTable();
    peers.ensure(A);
    expect(peers.applyClaims(A, { name: "alpha", ipv4: "100.64.0.2" })).toBeUndefined();
    const asked: NodeId[] = [];
    let allow = false;
    const tun = createMemoryTun();
    const written = tun.written;
    const outside = new Outside(peers, { ipv6: ipv6BytesOf(ME), ipv4Keys: [ipv4KeyOf(parseIpv4("100.64.0.1")!)] }, {
      session: new MemorySession(), route: new MemoryRoute(), tun, control: () => {}, signal: () => {},
      policy: { inbound: (from) => (asked.push(from), allow) },
    });
    outside.fromPeer(A, v4("100.64.0.2", "100.64.0.1"));
    expect(written.length).toBe(0);
    expect(outside.stats.policyDropped).toBe(1);
    expect(asked).toEqual([A]);
    allow = true;
    outside.fromPeer(A, v4("100.64.0.2", "100.64.0.1"));
    expect(written.length).toBe(1);
    // A spoofed packet never reaches the policy (the source check comes first).
    outside.fromPeer(A, v4("100.64.0.9", "100.64.0.1"));
    expect(asked.length).toBe(2);
  });

  test("an IPv4 claim held by another peer is refused", () => {
    const { peers } = setup();
    expect(peers.applyClaims(B, { ipv4: "100.64.0.2" })).toMatch(/already held/);
    expect(peers.get(B)!.ipv4).toBe("100.64.0.3");
  });
});

describe("peer table resolve", () => {
  test("by id, prefix, name, IPv6 and IPv4", () => {
    const { peers } = setup();
    expect(peers.resolve(A)?.id).toBe(A);
    expect(peers.resolve("bbbbbbbb")?.id).toBe(B);
    expect(peers.resolve("alpha")?.id).toBe(A);
    expect(peers.resolve(peers.get(B)!.ipv6)?.id).toBe(B);
    expect(peers.resolve("100.64.0.2")?.id).toBe(A);
    expect(peers.resolve("nobody")).toBeUndefined();
  });
});

describe("subnet routes and exits on the data path", () => {
  test("inside: a LAN address goes to the router the subnet port names; without one it is dropped", () => {
    const { peers, session, route, sent } = setup();
    const lan = parseIpv4("192.168.50.0")!;
    const subnets = { route: (p: Uint8Array, off: number, v: 4 | 6) => (v === 4 && p[off] === lan[0] && p[off + 1] === lan[1] && p[off + 2] === lan[2] ? A : undefined) };
    const inside = new Inside(peers, { session, route, tun: createMemoryTun(), policy: new OpenPolicy(false), subnets });
    inside.fromTun([v4("100.64.0.1", "192.168.50.10"), v4("100.64.0.1", "10.9.9.9")]);
    expect(sent.map(([to]) => to)).toEqual([A]);
    expect(inside.stats.noRoute).toBe(1);
  });

  test("outside: a router takes members' packets for its prefixes only; a member takes any source only from its exit", () => {
    const { peers, session, route } = setup();
    const tun = createMemoryTun();
    const outside = new Outside(
      peers,
      {
        ipv6: ipv6BytesOf(ME),
        ipv4Keys: [ipv4KeyOf(parseIpv4("100.64.0.1")!)],
        forwards: (_from, p, off) => p[off] === 192 && p[off + 1] === 168,
        fromExit: (from, p, off) => from === A && p[off] === 198,
      },
      { session, route, tun, policy: new OpenPolicy(), control: () => {}, signal: () => {} },
    );
    outside.fromPeer(A, v4("100.64.0.2", "192.168.50.10")); // forwarded to the LAN
    outside.fromPeer(A, v4("100.64.0.2", "10.1.1.1")); // not ours to forward
    outside.fromPeer(A, v4("198.51.100.1", "100.64.0.1")); // the internet through our exit
    outside.fromPeer(B, v4("198.51.100.1", "100.64.0.1")); // ... but not through another member
    outside.fromPeer(A, v4("100.64.0.3", "100.64.0.1")); // another member's address: spoofed
    expect(tun.written.length).toBe(2);
    expect(outside.stats.notForUs).toBe(1);
    expect(outside.stats.spoofed).toBe(2);
  });
});
