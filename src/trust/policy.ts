// Tag policy: a root-signed document saying which tags may open flows to which, and the stateful
// firewall that enforces it on receive (replies to flows a node opened itself always pass).
//
// Record: "TRP1" | network id (16) | version u64 | rules length u32 | rules (UTF-8 JSON) | ML-DSA-65 signature
// (context "trellis policy v1"). Rules: [{ "from": tag, "to": tag, "proto"?: "tcp"|"udp"|"icmp", "ports"?: "22" | "8000-8100" }].
// "*" matches any tag. No policy means every member may reach every member. The highest version wins.
import { DSA_SIGNATURE_BYTES, sign, verify } from "../identity/identity.ts";
import { TrustError } from "./errors.ts";

const MAGIC = "TRP1";
const CONTEXT = "trellis policy v1";
const PROTOS = { tcp: 6, udp: 17, icmp: 1 } as const;

export interface Rule {
  from: string;
  to: string;
  proto?: keyof typeof PROTOS;
  ports?: string;
}

export interface Policy {
  networkId: string;
  version: number;
  rules: Rule[];
}

function checkRules(v: unknown): Rule[] {
  if (!Array.isArray(v) || v.length > 1000) throw new TrustError("malformed", "policy rules must be a list (at most 1000)");
  return v.map((r, i) => {
    const bad = (why: string) => new TrustError("malformed", `policy rule ${i}: ${why}`);
    if (typeof r?.from !== "string" || typeof r?.to !== "string") throw bad("needs from and to tags");
    if (r.proto !== undefined && !(r.proto in PROTOS)) throw bad(`proto must be tcp, udp or icmp`);
    if (r.ports !== undefined && (typeof r.ports !== "string" || !/^\d{1,5}(-\d{1,5})?$/.test(r.ports))) throw bad(`ports must look like "22" or "8000-8100"`);
    return { from: r.from, to: r.to, ...(r.proto ? { proto: r.proto } : {}), ...(r.ports ? { ports: r.ports } : {}) };
  });
}

export function issuePolicy(p: Policy, root: { dsaSecret: Uint8Array }): Uint8Array {
  const rules = Buffer.from(JSON.stringify(checkRules(p.rules)));
  const head = Buffer.alloc(4 + 16 + 8 + 4);
  head.write(MAGIC, 0);
  Buffer.from(p.networkId, "hex").copy(head, 4);
  head.writeBigUInt64BE(BigInt(p.version), 20);
  head.writeUInt32BE(rules.length, 28);
  const body = Buffer.concat([head, rules]);
  return Uint8Array.from(Buffer.concat([body, sign(root as never, CONTEXT, body)]));
}

export function verifyPolicy(rec: Uint8Array, rootPub: Uint8Array, networkId: string): Policy {
  const b = Buffer.from(rec);
  if (b.length < 32 + DSA_SIGNATURE_BYTES || b.toString("latin1", 0, 4) !== MAGIC) throw new TrustError("malformed", "not a policy record");
  const len = b.readUInt32BE(28);
  if (b.length !== 32 + len + DSA_SIGNATURE_BYTES) throw new TrustError("malformed", "policy record has the wrong length");
  const id = b.subarray(4, 20).toString("hex");
  if (id !== networkId) throw new TrustError("wrong-network", `policy is for network ${id}`);
  if (!verify(rootPub, CONTEXT, b.subarray(0, 32 + len), b.subarray(32 + len))) throw new TrustError("bad-signature", "policy is not signed by the network root");
  let rules: unknown;
  try {
    rules = JSON.parse(b.subarray(32, 32 + len).toString());
  } catch {
    throw new TrustError("malformed", "policy rules are not JSON");
  }
  return { networkId: id, version: Number(b.readBigUInt64BE(20)), rules: checkRules(rules) };
}

/** IPv6 extension headers walked to find the upper protocol (RFC 8200 §4; AH RFC 4302). */
const HOP_BY_HOP = 0, ROUTING = 43, FRAGMENT = 44, AH = 51, DEST_OPTS = 60, MOBILITY = 135, HIP = 139, SHIM6 = 140;
const MAX_EXT_HEADERS = 8;

interface Flow {
  proto: number;
  sport: number;
  dport: number;
  /** A fragment: its datagram's key (version, identification, protocol) and whether it is the first. */
  frag?: { id: string; first: boolean };
}

/**
 * Upper protocol and ports of an IP packet, after IPv6 extension headers; null when the packet is
 * malformed (truncated headers, too many extension headers, a first fragment too short to hold the
 * ports): such packets never pass. A non-first fragment has no ports (0) and names its datagram.
 */
function flow(p: Uint8Array): Flow | null {
  const v = p[0] >> 4;
  let proto: number, l4: number, frag: Flow["frag"];
  if (v === 4) {
    if (p.length < 20) return null;
    proto = p[9];
    l4 = (p[0] & 15) * 4;
    const offset = ((p[6] & 0x1f) << 8) | p[7], more = (p[6] & 0x20) !== 0;
    if (offset || more) frag = { id: `4/${(p[4] << 8) | p[5]}/${proto}`, first: offset === 0 };
  } else if (v === 6) {
    if (p.length < 40) return null;
    proto = p[6];
    l4 = 40;
    for (let n = 0; ; n++) {
      if (proto !== HOP_BY_HOP && proto !== ROUTING && proto !== FRAGMENT && proto !== AH && proto !== DEST_OPTS && proto !== MOBILITY && proto !== HIP && proto !== SHIM6) break;
      if (n >= MAX_EXT_HEADERS || l4 + 8 > p.length) return null;
      const next = p[l4];
      if (proto === FRAGMENT) {
        const offset = ((p[l4 + 2] << 8) | p[l4 + 3]) >> 3;
        const id = new DataView(p.buffer, p.byteOffset + l4 + 4, 4).getUint32(0);
        frag = { id: `6/${id}/${next}`, first: offset === 0 };
        proto = next;
        l4 += 8;
        if (offset) break; // what follows is the middle of the datagram, not a header
        continue;
      }
      l4 += proto === AH ? (p[l4 + 1] + 2) * 4 : (p[l4 + 1] + 1) * 8;
      proto = next;
    }
    if (l4 > p.length) return null;
    if (proto === 58) proto = 1; // ICMPv6 counts as icmp
  } else return null;
  const hasPorts = proto === 6 || proto === 17;
  if (frag && !frag.first) return { proto, sport: 0, dport: 0, frag };
  if (hasPorts && p.length < l4 + 4) return null; // a first fragment must carry the ports (no tiny fragments)
  return { proto, sport: hasPorts ? (p[l4] << 8) | p[l4 + 1] : 0, dport: hasPorts ? (p[l4 + 2] << 8) | p[l4 + 3] : 0, ...(frag ? { frag } : {}) };
}

function portIn(port: number, spec?: string): boolean {
  if (!spec) return true;
  const [lo, hi] = spec.split("-").map(Number);
  return port >= lo && port <= (hi ?? lo);
}

const FLOW_TTL_MS = 120_000;
const MAX_FLOWS = 65536;
/** How long the later fragments of an allowed first fragment still pass (Linux reassembles for 30-60 s). */
const FRAGMENT_TTL_MS = 60_000;
const MAX_FRAGMENTED = 4096;

/**
 * The firewall for one network's policy. Outbound packets (ours) open flows; inbound packets pass when
 * a rule allows their sender's tags to reach ours, or when they answer a flow we opened. Protocol and
 * ports are read after IPv6 extension headers. A fragment passes only as part of an allowed datagram:
 * the first fragment (which carries the ports) is judged like any packet, and the later fragments of
 * that datagram (same peer, identification and protocol) pass after it; a later fragment that
 * arrives before its first one is dropped.
 */
export class Firewall {
  private flows = new Map<string, number>();
  /** Fragmented datagrams whose first fragment passed: peer/version/identification/protocol → when. */
  private fragmented = new Map<string, number>();
  dropped = 0;

  constructor(readonly policy: Policy, private readonly now: () => number = Date.now) {}

  /** Key of a flow as seen from this node: peer, protocol, our port, their port. */
  private key(peer: string, proto: number, ours: number, theirs: number): string {
    return `${peer}/${proto}/${ours}/${theirs}`;
  }

  /** Record a flow we open by sending `p` to `peer`. */
  outbound(peer: string, p: Uint8Array): void {
    const f = flow(p);
    if (!f || (f.frag && !f.frag.first)) return; // a later fragment names no flow
    if (this.flows.size >= MAX_FLOWS) this.expire();
    this.flows.set(this.key(peer, f.proto, f.sport, f.dport), this.now());
  }

  /** Whether `p` from `peer` (with tags `from`) may reach this node (tags `to`). */
  inbound(peer: string, from: string[], to: string[], p: Uint8Array): boolean {
    const f = flow(p);
    if (!f) {
      this.dropped++;
      return false;
    }
    if (f.frag && !f.frag.first) {
      const at = this.fragmented.get(`${peer}/${f.frag.id}`);
      if (at !== undefined && this.now() - at < FRAGMENT_TTL_MS) return true;
      this.dropped++;
      return false;
    }
    if (!this.allows(peer, from, to, f)) {
      this.dropped++;
      return false;
    }
    if (f.frag) {
      if (this.fragmented.size >= MAX_FRAGMENTED) for (const [k, t] of this.fragmented) if (this.now() - t >= FRAGMENT_TTL_MS || this.fragmented.size >= MAX_FRAGMENTED) this.fragmented.delete(k);
      this.fragmented.set(`${peer}/${f.frag.id}`, this.now());
    }
    return true;
  }

  private allows(peer: string, from: string[], to: string[], f: Flow): boolean {
    const k = this.key(peer, f.proto, f.dport, f.sport);
    const seen = this.flows.get(k);
    if (seen !== undefined && this.now() - seen < FLOW_TTL_MS) {
      this.flows.set(k, this.now());
      return true;
    }
    const name = f.proto === 6 ? "tcp" : f.proto === 17 ? "udp" : f.proto === 1 ? "icmp" : "";
    for (const r of this.policy.rules) {
      if (r.from !== "*" && !from.includes(r.from)) continue;
      if (r.to !== "*" && !to.includes(r.to)) continue;
      if (r.proto && r.proto !== name) continue;
      if (!portIn(f.dport, r.ports)) continue;
      // An allowed new flow: its later packets and our replies belong to it.
      this.flows.set(k, this.now());
      return true;
    }
    return false;
  }

  expire(): void {
    const now = this.now();
    for (const [k, t] of this.flows) if (now - t >= FLOW_TTL_MS) this.flows.delete(k);
  }
}
