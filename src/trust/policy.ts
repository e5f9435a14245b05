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

/** Protocol and destination port of an IP packet (port 0 when there is none). */
function flow(p: Uint8Array): { proto: number; sport: number; dport: number; l4: number } | null {
  const v = p[0] >> 4;
  let proto: number, l4: number;
  if (v === 4) {
    proto = p[9];
    l4 = (p[0] & 15) * 4;
  } else if (v === 6) {
    proto = p[6] === 58 ? 1 : p[6]; // ICMPv6 counts as icmp
    l4 = 40;
  } else return null;
  const ports = (proto === 6 || proto === 17) && p.length >= l4 + 4;
  return { proto, l4, sport: ports ? (p[l4] << 8) | p[l4 + 1] : 0, dport: ports ? (p[l4 + 2] << 8) | p[l4 + 3] : 0 };
}

function portIn(port: number, spec?: string): boolean {
  if (!spec) return true;
  const [lo, hi] = spec.split("-").map(Number);
  return port >= lo && port <= (hi ?? lo);
}

const FLOW_TTL_MS = 120_000;
const MAX_FLOWS = 65536;

/**
 * The firewall for one network's policy. Outbound packets (ours) open flows; inbound packets pass when
 * a rule allows their sender's tags to reach ours, or when they answer a flow we opened.
 */
export class Firewall {
  private flows = new Map<string, number>();
  dropped = 0;

  constructor(readonly policy: Policy, private readonly now: () => number = Date.now) {}

  /** Key of a flow as seen from this node: peer, protocol, our port, their port. */
  private key(peer: string, proto: number, ours: number, theirs: number): string {
    return `${peer}/${proto}/${ours}/${theirs}`;
  }

  /** Record a flow we open by sending `p` to `peer`. */
  outbound(peer: string, p: Uint8Array): void {
    const f = flow(p);
    if (!f) return;
    if (this.flows.size >= MAX_FLOWS) this.expire();
    this.flows.set(this.key(peer, f.proto, f.sport, f.dport), this.now());
  }

  /** Whether `p` from `peer` (with tags `from`) may reach this node (tags `to`). */
  inbound(peer: string, from: string[], to: string[], p: Uint8Array): boolean {
    const f = flow(p);
    if (!f) return false;
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
    this.dropped++;
    return false;
  }

  expire(): void {
    const now = this.now();
    for (const [k, t] of this.flows) if (now - t >= FLOW_TTL_MS) this.flows.delete(k);
  }
}
