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

/** An IPv6 packet: 40-byte header, then `ext` (extension headers, each [next, ...bytes]), then the upper header. */
function v6(first: number, ext: Uint8Array, upper: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + ext.length + upper.length);
  p[0] = 0x60;
  p[6] = first;
  p.set(ext, 40);
  p.set(upper, 40 + ext.length);
  return p;
}
const ports = (sport: number, dport: number, len = 20) => {
  const u = new Uint8Array(len);
  u[0] = sport >> 8; u[1] = sport & 255; u[2] = dport >> 8; u[3] = dport & 255;
  return u;
};
/** Fragment header: next, 0, offset (8-byte units) << 3 | M, identification u32. */
const fragHdr = (next: number, offset: number, more: boolean, id: number) => Uint8Array.of(next, 0, (offset << 3) >> 8, ((offset << 3) & 255) | (more ? 1 : 0), id >>> 24, (id >> 16) & 255, (id >> 8) & 255, id & 255);
const hopByHop = (next: number) => Uint8Array.of(next, 0, 1, 4, 0, 0, 0, 0); // 8 bytes: a PadN option

describe("firewall: IPv6 extension headers and fragments (issue 14, 8)", () => {
  const policy = { networkId: root.id, version: 1, rules: [{ from: "*", to: "server", proto: "tcp" as const, ports: "443" }] };

  // The attack: after we send one fragmented IPv6 packet to a peer, its flow was keyed by next header 44
  // (not the real protocol), so every IPv6 fragment from that peer passed for 120 s — a fragmented
  // TCP SYN to port 22 among them.
  test("one fragmented packet of ours opens nothing; a fragmented SYN to port 22 is dropped", () => {
    const fw = new Firewall(policy);
    fw.outbound("p", v6(44, fragHdr(17, 0, true, 7), ports(5000, 53, 1200))); // our fragmented UDP
    fw.outbound("p", v6(44, fragHdr(17, 150, false, 7), new Uint8Array(100)));
    expect(fw.inbound("p", ["laptop"], ["server"], v6(44, fragHdr(6, 0, true, 99), ports(40000, 22)))).toBe(false);
    expect(fw.inbound("p", ["laptop"], ["server"], v6(44, fragHdr(6, 3, false, 99), new Uint8Array(40)))).toBe(false);
    expect(fw.inbound("p", ["laptop"], ["server"], v6(44, fragHdr(17, 150, false, 1234), new Uint8Array(40)))).toBe(false);
    // The answer to our own fragmented UDP flow still passes, fragmented or not.
    expect(fw.inbound("p", ["laptop"], ["server"], v6(17, new Uint8Array(0), ports(53, 5000, 8)))).toBe(true);
  });

  test("extension headers are walked to the real protocol and ports", () => {
    const fw = new Firewall(policy);
    expect(fw.inbound("p", ["laptop"], ["server"], v6(0, hopByHop(6), ports(40000, 22)))).toBe(false);
    expect(fw.inbound("p", ["laptop"], ["server"], v6(0, Uint8Array.from([...hopByHop(60), ...hopByHop(6)]), ports(40000, 443)))).toBe(true);
    expect(fw.inbound("p", ["laptop"], ["server"], v6(60, hopByHop(6), ports(40000, 22)))).toBe(false);
    // Truncated or endless chains never pass.
    expect(fw.inbound("p", ["laptop"], ["server"], v6(0, Uint8Array.of(6, 9), new Uint8Array(0)))).toBe(false);
    const chain = new Uint8Array(8 * 9);
    for (let i = 0; i < 9; i++) chain.set(hopByHop(i < 8 ? 60 : 6), i * 8);
    expect(fw.inbound("p", ["laptop"], ["server"], v6(60, chain, ports(40000, 443)))).toBe(false);
  });

  test("fragments of an allowed datagram pass after its first fragment; tiny first fragments do not", () => {
    const fw = new Firewall(policy);
    const later = v6(44, fragHdr(6, 160, false, 42), new Uint8Array(200));
    expect(fw.inbound("p", ["laptop"], ["server"], later)).toBe(false); // before its first fragment
    expect(fw.inbound("p", ["laptop"], ["server"], v6(44, fragHdr(6, 0, true, 42), ports(40000, 443, 1280)))).toBe(true);
    expect(fw.inbound("p", ["laptop"], ["server"], later)).toBe(true);
    expect(fw.inbound("q", ["laptop"], ["server"], later)).toBe(false); // another peer's, same id
    expect(fw.inbound("p", ["laptop"], ["server"], v6(44, fragHdr(6, 0, true, 43), Uint8Array.of(0x9c)))).toBe(false); // no room for ports
  });

  test("IPv4 fragments: later ones pass only after an allowed first one", () => {
    const fw = new Firewall(policy);
    const frag4 = (id: number, offset: number, more: boolean, dport: number) => {
      const p = tcp4(40000, dport);
      p[4] = id >> 8; p[5] = id & 255;
      p[6] = (more ? 0x20 : 0) | (offset >> 8); p[7] = offset & 255;
      return p;
    };
    expect(fw.inbound("p", ["laptop"], ["server"], frag4(5, 0, true, 22))).toBe(false);
    expect(fw.inbound("p", ["laptop"], ["server"], frag4(5, 185, false, 443))).toBe(false); // "443" is payload here
    expect(fw.inbound("p", ["laptop"], ["server"], frag4(6, 0, true, 443))).toBe(true);
    expect(fw.inbound("p", ["laptop"], ["server"], frag4(6, 185, false, 0))).toBe(true);
  });
});

describe("policy edges the mutation run found untested", () => {
  const code = (f: () => unknown) => {
    try {
      f();
      return "ok";
    } catch (e) {
      if (e instanceof TrustError) return e.code;
      throw e;
    }
  };

  test("rules must be a list of at most 1000, each with from and to", () => {
    const rule = { from: "a", to: "b" };
    expect(code(() => issuePolicy({ networkId: root.id, version: 1, rules: Array(1000).fill(rule) }, root))).toBe("ok");
    expect(code(() => issuePolicy({ networkId: root.id, version: 1, rules: Array(1001).fill(rule) }, root))).toBe("malformed");
    expect(code(() => issuePolicy({ networkId: root.id, version: 1, rules: {} as never }, root))).toBe("malformed");
    expect(code(() => issuePolicy({ networkId: root.id, version: 1, rules: [{ from: "a" }] as never }, root))).toBe("malformed");
    expect(code(() => issuePolicy({ networkId: root.id, version: 1, rules: [{ to: "a" }] as never }, root))).toBe("malformed");
  });

  test("short, overlong and foreign records are refused by their checks, never by an exception", () => {
    const rec = issuePolicy({ networkId: root.id, version: 3, rules: [] }, root);
    for (const bad of [new Uint8Array(0), rec.subarray(0, 31), rec.subarray(0, rec.length - 1), Uint8Array.from([...rec, 0])]) expect(code(() => verifyPolicy(bad, root.rootPub, root.id))).toBe("malformed");
    const wrongMagic = Uint8Array.from(rec);
    wrongMagic[0] = 0x58;
    expect(code(() => verifyPolicy(wrongMagic, root.rootPub, root.id))).toBe("malformed");
    expect(code(() => verifyPolicy(rec, root.rootPub, "00".repeat(16)))).toBe("wrong-network");
  });

  test("a proto rule matches that protocol only: icmp lets ICMPv6 in, not IPv6 TCP", () => {
    const fw = new Firewall({ networkId: root.id, version: 1, rules: [{ from: "*", to: "*", proto: "icmp" }] });
    const v6 = (next: number) => {
      const p = new Uint8Array(48);
      p[0] = 0x60;
      p[6] = next;
      return p;
    };
    expect(fw.inbound("x", [], [], v6(58))).toBe(true);
    expect(fw.inbound("x", [], [], v6(6))).toBe(false);
    expect(fw.inbound("y", [], [], v6(17))).toBe(false);
    expect(fw.inbound("z", [], [], new Uint8Array([0x10, 0, 0]))).toBe(false); // not IP
    expect(() => fw.outbound("z", new Uint8Array([0x10, 0, 0]))).not.toThrow(); // opens nothing
  });

  test("a rule's 'to' tag must be ours: server → laptop does not let a server reach a db", () => {
    const fw = new Firewall({ networkId: root.id, version: 1, rules: [{ from: "server", to: "laptop" }] });
    expect(fw.inbound("s", ["server"], ["db"], icmp4())).toBe(false);
    expect(fw.inbound("s", ["server"], ["laptop", "db"], icmp4())).toBe(true);
    expect(fw.inbound("t", ["db"], ["laptop"], icmp4())).toBe(false);
  });

  test("a port rule reads the port of the shortest packet that has one", () => {
    const fw = new Firewall({ networkId: root.id, version: 1, rules: [{ from: "*", to: "*", proto: "tcp", ports: "443" }] });
    const p = tcp4(40000, 443).subarray(0, 24); // IPv4 header + exactly the two ports
    expect(fw.inbound("x", [], [], p)).toBe(true);
    expect(fw.inbound("y", [], [], tcp4(40000, 443).subarray(0, 23))).toBe(false); // no room for the ports: port 0
  });
});

describe("firewall: extension headers and fragments at their edges (mutation survivors)", () => {
  const fw443 = () => new Firewall({ networkId: root.id, version: 1, rules: [{ from: "*", to: "*", proto: "tcp", ports: "443" }] });
  const AH = 51, DEST = 60, TCP = 6, ICMP6 = 58;

  test("AH's length is counted in 4-byte units (+2), other headers in 8-byte units (+1): the real port is read", () => {
    const ah = new Uint8Array(24);
    ah[0] = TCP;
    ah[1] = 4; // (4 + 2) * 4 = 24 bytes; read as (4 + 1) * 8 it would be 40
    expect(fw443().inbound("p", [], [], v6(AH, ah, ports(40000, 443)))).toBe(true);
    expect(fw443().inbound("p", [], [], v6(AH, ah, ports(40000, 22)))).toBe(false);
  });

  test("an extension header that runs past the packet is dropped, even for a protocol with no ports", () => {
    const fw = new Firewall({ networkId: root.id, version: 1, rules: [{ from: "*", to: "*", proto: "icmp" }] });
    const dest = new Uint8Array(8);
    dest[0] = ICMP6;
    dest[1] = 10; // (10 + 1) * 8 = 88 bytes: far past the end
    expect(fw.inbound("p", [], [], v6(DEST, dest, new Uint8Array(8)))).toBe(false);
    dest[1] = 0;
    expect(fw.inbound("p", [], [], v6(DEST, dest, new Uint8Array(8)))).toBe(true);
  });

  test("a first fragment too short to hold the ports is dropped, even where any TCP port is allowed", () => {
    const fw = new Firewall({ networkId: root.id, version: 1, rules: [{ from: "*", to: "*", proto: "tcp" }] });
    expect(fw.inbound("p", [], [], v6(44, fragHdr(TCP, 0, true, 9), new Uint8Array(2)))).toBe(false);
    expect(fw.inbound("p", [], [], v6(44, fragHdr(TCP, 0, true, 10), ports(1, 2, 4)))).toBe(true);
  });

  test("later fragments of an allowed datagram pass however short, whatever their payload looks like, for 60 s", () => {
    let t = 0;
    const fw = new Firewall({ networkId: root.id, version: 1, rules: [{ from: "*", to: "*", proto: "tcp", ports: "443" }] }, () => t);
    expect(fw.inbound("p", [], [], v6(44, fragHdr(TCP, 0, true, 7), ports(40000, 443)))).toBe(true);
    // A 2-byte tail: no room for ports, and none needed.
    expect(fw.inbound("p", [], [], v6(44, fragHdr(TCP, 3, false, 7), new Uint8Array(2)))).toBe(true);
    // A datagram whose fragmentable part starts with destination options: the first fragment is
    // read through them to TCP 443; a later fragment's payload is the middle of the datagram, not a
    // header, however it would parse (here: as options running far past the end).
    const opts = new Uint8Array(8);
    opts[0] = TCP;
    expect(fw.inbound("p", [], [], v6(44, Uint8Array.from([...fragHdr(DEST, 0, true, 9), ...opts]), ports(40000, 443)))).toBe(true);
    const tail = new Uint8Array(4);
    tail[1] = 200;
    expect(fw.inbound("p", [], [], v6(44, fragHdr(DEST, 4, false, 9), tail))).toBe(true);
    t = 59_999;
    expect(fw.inbound("p", [], [], v6(44, fragHdr(TCP, 5, false, 7), new Uint8Array(8)))).toBe(true);
    t = 60_000;
    expect(fw.inbound("p", [], [], v6(44, fragHdr(TCP, 6, false, 7), new Uint8Array(8)))).toBe(false);
    // Another datagram's tail never passes on this one's account.
    t = 0;
    expect(fw.inbound("p", [], [], v6(44, fragHdr(TCP, 3, false, 8), new Uint8Array(8)))).toBe(false);
  });
});
