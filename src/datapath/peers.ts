// The peer table: every node this node knows of, found by node id, overlay IPv6 or IPv4, or name.
import { addressKey6, equal16, ipv6BytesOf, ipv6Of, parseIpv4, parseIpv6 } from "../identity/address.ts";
import { isNodeId, type NodeId, type PublicIdentity } from "../identity/identity.ts";
import { ipv4KeyOf } from "./ip.ts";

/** What a peer claimed about itself in its (signed, encrypted) handshake. */
export interface Claims {
  name?: string;
  ipv4?: string;
  /** Membership certificates (base64), checked against this node's networks. */
  certs?: string[];
}

export interface Peer {
  readonly id: NodeId;
  readonly ipv6: string;
  readonly ipv6Bytes: Uint8Array;
  /** addressKey6 of the IPv6 address. */
  readonly key6: number;
  pub?: PublicIdentity;
  name?: string;
  ipv4?: string;
  /** `ipv4` as a 32-bit number, for per-packet checks. */
  ipv4Key?: number;
  /** Prefixes its certificate lets it send from (it routes for them), as bytes and length. */
  subnets?: { family: 4 | 6; bytes: Uint8Array; prefix: number }[];
  /** Last measured end-to-end RTT in ms (overlay ping), if any. */
  rttMs?: number;
  /** Packets dropped because their inner source did not belong to this peer. */
  spoofDrops: number;
  /** IP bytes sent to / received from this peer through the overlay (the page's throughput). */
  txBytes: number;
  rxBytes: number;
}

export function encodeClaims(c: Claims): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(c));
}

/** Claims are peer-supplied: parse defensively, keep only well-formed fields. */
export function decodeClaims(b: Uint8Array): Claims {
  if (b.length > 16384) return {};
  try {
    const v = JSON.parse(new TextDecoder().decode(b));
    const out: Claims = {};
    if (typeof v?.name === "string" && /^[a-z0-9-]{1,63}$/.test(v.name)) out.name = v.name;
    if (typeof v?.ipv4 === "string" && parseIpv4(v.ipv4)) out.ipv4 = v.ipv4;
    if (Array.isArray(v?.certs)) out.certs = v.certs.filter((c: unknown) => typeof c === "string" && c.length < 16384).slice(0, 4);
    return out;
  } catch {
    return {};
  }
}

/**
 * What an IPv4 claim that nobody signed (an allow-listed peer's, in its handshake) may be: inside one
 * of our overlay prefixes, not one of our own addresses, and for a pinned peer only its pinned
 * address (nobody else may claim a pinned address).
 */
export interface Ipv4ClaimRules {
  prefixes: { address: string; prefix: number }[];
  own: string[];
  pinned: ReadonlyMap<NodeId, string>;
}

function inPrefix4(a: Uint8Array, net: { address: string; prefix: number }): boolean {
  const n = parseIpv4(net.address)!;
  const mask = net.prefix === 0 ? 0 : (0xffffffff << (32 - net.prefix)) >>> 0;
  return ((ipv4KeyOf(a) & mask) >>> 0) === ((ipv4KeyOf(n) & mask) >>> 0);
}

/** The address to record for an unsigned claim under `rules`, or why it is refused. */
export function checkIpv4Claim(id: NodeId, claimed: string | undefined, rules: Ipv4ClaimRules): { ipv4?: string } | string {
  const pin = rules.pinned.get(id);
  if (pin) return claimed && claimed !== pin ? `ipv4 ${claimed} is not the address [network] allow_ipv4 pins for it (${pin}): using ${pin}` : { ipv4: pin };
  if (!claimed) return {};
  const a = parseIpv4(claimed);
  if (!a) return `ipv4 ${claimed} is not an address`;
  if (rules.own.includes(claimed)) return `ipv4 ${claimed} is this node's own address`;
  for (const [other, addr] of rules.pinned) if (addr === claimed && other !== id) return `ipv4 ${claimed} is pinned to ${other} ([network] allow_ipv4)`;
  if (!rules.prefixes.some((n) => inPrefix4(a, n)))
    return rules.prefixes.length ? `ipv4 ${claimed} is outside the overlay prefix ${rules.prefixes.map((n) => `${n.address}/${n.prefix}`).join(", ")}` : `ipv4 ${claimed}: this node has no overlay IPv4 prefix ([node] ipv4) to accept it in`;
  return { ipv4: claimed };
}

export class PeerTable {
  private byId = new Map<NodeId, Peer>();
  private byKey6 = new Map<number, Peer>();
  private byIpv4 = new Map<number, Peer>();

  /** The peer with this id, created if new. */
  ensure(id: NodeId): Peer {
    let p = this.byId.get(id);
    if (!p) {
      const ipv6Bytes = ipv6BytesOf(id);
      const key6 = addressKey6(ipv6Bytes);
      p = { id, ipv6: ipv6Of(id), ipv6Bytes, key6, spoofDrops: 0, txBytes: 0, rxBytes: 0 };
      this.byId.set(id, p);
      this.byKey6.set(key6, p);
    }
    return p;
  }

  get(id: NodeId): Peer | undefined {
    return this.byId.get(id);
  }

  all(): Peer[] {
    return [...this.byId.values()];
  }

  /**
   * Record a peer's claims. An IPv4 address already held by another peer is refused (first come keeps
   * it); an unsigned claim (`rules` given: an allow-listed peer's) must also pass checkIpv4Claim.
   * Returns a reason string when a claim was refused.
   */
  applyClaims(id: NodeId, c: Claims, rules?: Ipv4ClaimRules): string | undefined {
    const p = this.ensure(id);
    if (c.name) p.name = c.name;
    let refused: string | undefined;
    if (rules) {
      const r = checkIpv4Claim(id, c.ipv4, rules);
      if (typeof r === "string") {
        refused = r;
        c = { ...c, ipv4: rules.pinned.get(id) };
      } else c = { ...c, ipv4: r.ipv4 };
    }
    return this.takeIpv4(p, c.ipv4) ?? refused;
  }

  private takeIpv4(p: Peer, ipv4: string | undefined): string | undefined {
    const id = p.id;
    const c = { ipv4 };
    if (!c.ipv4 || c.ipv4 === p.ipv4) return;
    const key = ipv4KeyOf(parseIpv4(c.ipv4)!);
    const holder = this.byIpv4.get(key);
    if (holder && holder.id !== id) return `ipv4 ${c.ipv4} is already held by ${holder.id}`;
    if (p.ipv4) this.byIpv4.delete(ipv4KeyOf(parseIpv4(p.ipv4)!));
    p.ipv4 = c.ipv4;
    p.ipv4Key = key;
    this.byIpv4.set(key, p);
  }

  /** The peer whose overlay IPv6 address is the 16 bytes at `addr[offset]`. */
  byAddress6(addr: Uint8Array, offset = 0): Peer | undefined {
    const p = this.byKey6.get(addressKey6(addr, offset));
    return p && equal16(addr, offset, p.ipv6Bytes) ? p : undefined;
  }

  byIpv4Key(key: number): Peer | undefined {
    return this.byIpv4.get(key);
  }

  /** Resolve what a person typed: node id, unique id prefix (≥ 6 chars), name, IPv6 or IPv4. */
  resolve(what: string): Peer | undefined {
    const s = what.trim().toLowerCase();
    if (isNodeId(s)) return this.byId.get(s);
    const v6 = parseIpv6(s);
    if (v6) return this.byAddress6(v6);
    const v4 = parseIpv4(s);
    if (v4) return this.byIpv4.get(ipv4KeyOf(v4));
    const named = this.all().filter((p) => p.name === s);
    if (named.length === 1) return named[0];
    if (/^[0-9a-f]{6,31}$/.test(s)) {
      const m = this.all().filter((p) => p.id.startsWith(s));
      if (m.length === 1) return m[0];
    }
    return undefined;
  }
}
