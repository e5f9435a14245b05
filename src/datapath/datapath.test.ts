// Inside (route by destination) and outside (the key is the route) on hand-made IPv4 and IPv6 packets.
import { describe, expect, test } from "bun:test";
import { ipv6BytesOf, parseIpv4 } from "../identity/address.ts";
import { parseNodeId, type NodeId } from "../identity/identity.ts";
import { PeerTable } from "./peers.ts";
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
  peers.ensure(A);
  peers.ensure(B);
  expect(peers.applyClaims(A, { name: "alpha", ipv4: "100.64.0.2" })).toBeUndefined();
  expect(peers.applyClaims(B, { name: "bravo", ipv4: "100.64.0.3" })).toBeUndefined();
  const sent: [NodeId, Uint8Array][] = [], written: Uint8Array[] = [], control: [NodeId, Uint8Array][] = [];
  const inside = new Inside(peers, (to, p) => sent.push([to, p]));
  const outside = new Outside(
    peers,
    { ipv6: ipv6BytesOf(ME), ipv4Keys: [ipv4KeyOf(parseIpv4("100.64.0.1")!)] },
    (p) => written.push(p),
    (from, p) => control.push([from, p]),
  );
  return { peers, inside, outside, sent, written, control };
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
    const written: Uint8Array[] = [];
    const asked: NodeId[] = [];
    let allow = false;
    const outside = new Outside(peers, { ipv6: ipv6BytesOf(ME), ipv4Keys: [ipv4KeyOf(parseIpv4("100.64.0.1")!)] }, (p) => written.push(p), () => {}, () => {}, (from) => (asked.push(from), allow));
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
