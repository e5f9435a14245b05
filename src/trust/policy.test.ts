// Tag policy records and the stateful firewall on hand-made IPv4/IPv6 TCP, UDP and ICMP packets.
import { describe, expect, test } from "bun:test";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { networkIdOf } from "./root.ts";
import { Firewall, issuePolicy, verifyPolicy } from "./policy.ts";
import { TrustError } from "./errors.ts";

const k = ml_dsa65.keygen(new Uint8Array(32).fill(3));
const root = { id: networkIdOf(k.publicKey), rootPub: k.publicKey, dsaSecret: k.secretKey };

function tcp4(sport: number, dport: number): Uint8Array {
  const p = new Uint8Array(40);
  p[0] = 0x45;
  p[9] = 6;
  p[20] = sport >> 8; p[21] = sport & 255; p[22] = dport >> 8; p[23] = dport & 255;
  return p;
}
function udp6(sport: number, dport: number): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = 0x60;
  p[6] = 17;
  p[40] = sport >> 8; p[41] = sport & 255; p[42] = dport >> 8; p[43] = dport & 255;
  return p;
}
function icmp4(): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p[9] = 1;
  return p;
}

describe("policy records", () => {
  test("round trip; wrong root, tampering and bad rules are refused", () => {
    const rec = issuePolicy({ networkId: root.id, version: 3, rules: [{ from: "server", to: "laptop" }] }, root);
    expect(verifyPolicy(rec, root.rootPub, root.id)).toEqual({ networkId: root.id, version: 3, rules: [{ from: "server", to: "laptop" }] });
    const t = Uint8Array.from(rec);
    t[40] ^= 1;
    expect(() => verifyPolicy(t, root.rootPub, root.id)).toThrow(TrustError);
    expect(() => issuePolicy({ networkId: root.id, version: 1, rules: [{ from: "a", to: "b", proto: "gre" as never }] }, root)).toThrow(/proto/);
    expect(() => issuePolicy({ networkId: root.id, version: 1, rules: [{ from: "a", to: "b", ports: "x" }] }, root)).toThrow(/ports/);
  });
});

describe("firewall", () => {
  const policy = { networkId: root.id, version: 1, rules: [{ from: "server", to: "laptop" }, { from: "*", to: "server", proto: "tcp" as const, ports: "443" }] };

  test("a rule lets a tag open flows; others are dropped", () => {
    const fw = new Firewall(policy);
    expect(fw.inbound("s1", ["server"], ["laptop"], icmp4())).toBe(true);
    expect(fw.inbound("l1", ["laptop"], ["server"], tcp4(40000, 22))).toBe(false);
    expect(fw.inbound("l1", ["laptop"], ["server"], tcp4(40000, 443))).toBe(true);
    expect(fw.inbound("l1", ["laptop"], ["server"], udp6(40000, 443))).toBe(false);
    expect(fw.dropped).toBe(2);
  });

  test("replies to a flow we opened pass, and only for that flow", () => {
    let t = 0;
    const fw = new Firewall(policy, () => t);
    // We are "laptop" opening a flow to a server's port 22 (no rule lets servers' port 22 reach us otherwise).
    fw.outbound("s1", tcp4(40000, 22));
    expect(fw.inbound("s1", ["db"], ["laptop"], tcp4(22, 40000))).toBe(true);
    expect(fw.inbound("s1", ["db"], ["laptop"], tcp4(22, 40001))).toBe(false); // another port
    expect(fw.inbound("s2", ["db"], ["laptop"], tcp4(22, 40000))).toBe(false); // another peer
    t += 200_000; // the flow went idle and expired
    expect(fw.inbound("s1", ["db"], ["laptop"], tcp4(22, 40000))).toBe(false);
  });

  test("an allowed inbound flow lets our replies' replies back in", () => {
    const fw = new Firewall(policy);
    expect(fw.inbound("l1", ["laptop"], ["server"], tcp4(50000, 443))).toBe(true);
    fw.outbound("l1", tcp4(443, 50000));
    expect(fw.inbound("l1", ["laptop"], ["server"], tcp4(50000, 443))).toBe(true);
  });
});
