// Subnet routes on the member's side: routers' advertisements, checked against their grants, and the choice of router per packet.
//
// A router (a member whose root-signed certificate lists subnets; `trellis sign/invite --subnets`,
// `--exit` grants 0.0.0.0/0 and ::/0) answers route queries inside the end-to-end session, so every
// advertisement is authenticated by the session and bounded by the sender's certificate:
//
//   query   0x05 | seq u32                                  (member → router, every QUERY_EVERY_MS)
//   advert  0x06 | seq u32 | flags u8 | count u8 | (family u8 | prefix length u8 | address 4 or 16)*
//           flags bit 0: offers itself as an exit node; bit 1: the exit also carries IPv6 (it has an
//           IPv6 uplink); bit 2: the exit answers DNS for any name on its overlay addresses (it
//           forwards to its own resolver: `[routes] exit_dns` on a member uses it). The list holds
//           only what is healthy now, so a router whose LAN is down answers with an empty list (a withdrawal).
//
// A prefix is used only when the router's certificate grants it (each advertised prefix inside a
// granted one); an advertisement not refreshed for STALE_MS counts as withdrawn (the router died or
// the path to it did). Per destination, the longest matching prefix wins; among its healthy routers
// the one in use stays while it is healthy, else the one with the lowest measured query RTT.
import type { NodeId } from "../identity/identity.ts";
import { inPrefix } from "../identity/address.ts";
import { RouteError } from "./errors.ts";
import { decodeSubnets, encodeSubnets, subnetBytes, subnetWithin, type Subnet } from "../trust/subnet.ts";

export const CONTROL_ROUTE_QUERY = 0x05;
export const CONTROL_ROUTE_ADVERT = 0x06;
const FLAG_EXIT = 1, FLAG_EXIT6 = 2, FLAG_DNS = 4;
const FLAGS = FLAG_EXIT | FLAG_EXIT6 | FLAG_DNS;
/** How often a member asks each router it knows; an advert older than STALE_MS is a withdrawal. */
export const QUERY_EVERY_MS = 250;
export const STALE_MS = 1000;
/** A router silent this long is forgotten (its prefixes leave the TUN when no other router has them). */
export const FORGET_MS = 30_000;

/** The route layer's one error class (./errors.ts), named here too for the callers of this module. */
export { RouteError };

export interface Advert {
  seq: number;
  exit: boolean;
  /** The exit carries IPv6 too, and answers DNS on its overlay addresses (both only with `exit`). */
  exit6?: boolean;
  dns?: boolean;
  prefixes: Subnet[];
}

export function encodeQuery(seq: number): Uint8Array {
  const b = new Uint8Array(5);
  b[0] = CONTROL_ROUTE_QUERY;
  new DataView(b.buffer).setUint32(1, seq >>> 0);
  return b;
}

export function decodeQuerySeq(b: Uint8Array): number | undefined {
  if (b.length !== 5 || b[0] !== CONTROL_ROUTE_QUERY) return undefined;
  return new DataView(b.buffer, b.byteOffset, b.length).getUint32(1);
}

export function encodeAdvert(a: Advert): Uint8Array {
  const out: number[] = [CONTROL_ROUTE_ADVERT, (a.seq >>> 24) & 255, (a.seq >>> 16) & 255, (a.seq >>> 8) & 255, a.seq & 255, (a.exit ? FLAG_EXIT : 0) | (a.exit && a.exit6 ? FLAG_EXIT6 : 0) | (a.exit && a.dns ? FLAG_DNS : 0)];
  encodeSubnets(a.prefixes, out);
  return Uint8Array.from(out);
}

/** Decode an advert; throws RouteError("malformed") on any length or field that is off. */
export function decodeAdvert(b: Uint8Array): Advert {
  if (b.length < 7 || b[0] !== CONTROL_ROUTE_ADVERT) throw new RouteError("malformed", "route advert: too short or wrong type");
  let off = 6;
  const need = (n: number) => {
    if (off + n > b.length) throw new RouteError("malformed", "route advert: truncated");
    const v = b.subarray(off, off + n);
    off += n;
    return v;
  };
  let prefixes: Subnet[];
  try {
    prefixes = decodeSubnets(need);
    for (const p of prefixes) subnetBytes(p);
  } catch (e) {
    if (e instanceof RouteError) throw e;
    throw new RouteError("malformed", `route advert: ${(e as Error).message}`);
  }
  if (off !== b.length) throw new RouteError("malformed", "route advert: trailing bytes");
  if (b[5] & ~FLAGS) throw new RouteError("malformed", "route advert: unknown flags");
  const exit = (b[5] & FLAG_EXIT) !== 0;
  return { seq: new DataView(b.buffer, b.byteOffset).getUint32(1), exit, exit6: exit && (b[5] & FLAG_EXIT6) !== 0, dns: exit && (b[5] & FLAG_DNS) !== 0, prefixes };
}

export const isDefault = (s: Subnet) => s.prefix === 0;
/** The exit right: the root granted a default route (`--exit`). */
export const grantsExit = (grant: Subnet[]) => grant.some((g) => g.family === 4 && g.prefix === 0);
export const fmtPrefix = (s: Subnet) => `${s.address}/${s.prefix}`;

/** The prefixes in `wanted` that no prefix of `grant` covers (empty: all granted). */
export function outsideGrant(wanted: Subnet[], grant: Subnet[]): Subnet[] {
  return wanted.filter((w) => !grant.some((g) => subnetWithin(w, g)));
}

interface RouterEntry {
  id: NodeId;
  name: string | null;
  prefixes: (Subnet & { bytes: Uint8Array })[];
  exit: boolean;
  exit6: boolean;
  dns: boolean;
  /** When the last advert arrived (ms), and its query's round trip. */
  seenAt: number;
  rttMs: number | null;
}

/** A healthy exit: whether it carries IPv6 and answers DNS, and its query RTT. */
export interface ExitView {
  id: NodeId;
  name: string | null;
  rttMs: number | null;
  exit6: boolean;
  dns: boolean;
}

export interface RouteView {
  prefix: string;
  routers: { id: NodeId; name: string | null; healthy: boolean; rtt_ms: number | null }[];
  /** The router packets for this prefix go to now, or null (none healthy). */
  via: NodeId | null;
}

/**
 * Owned by the node: adverts in (already authenticated by the session), routers out. `now` in ms.
 * Pure apart from the clock it is given, so failover can be tested without a network.
 */
export class RouteTable {
  private readonly routers = new Map<NodeId, RouterEntry>();
  /** The router in use per prefix ("a.b.c.d/n"), kept while healthy. */
  private readonly inUse = new Map<string, NodeId>();
  private readonly sent = new Map<NodeId, { seq: number; at: number }>();
  private seq = 1;

  constructor(private readonly now: () => number = () => Date.now()) {}

  /** The query to send to `router` now (its seq remembered to time the answer). */
  query(router: NodeId): Uint8Array {
    const seq = this.seq++ >>> 0;
    if (!this.sent.has(router) || this.now() - this.sent.get(router)!.at > STALE_MS) this.sent.set(router, { seq, at: this.now() });
    return encodeQuery(seq);
  }

  /**
   * An advert from `router`, whose certificate grants `grant`. Prefixes outside the grant are dropped
   * and returned (for the log); the rest replace what the router said before.
   */
  advert(router: NodeId, name: string | null, a: Advert, grant: Subnet[]): Subnet[] {
    const refused = outsideGrant(a.prefixes, grant);
    const ok = a.prefixes.filter((p) => !refused.includes(p) && !isDefault(p));
    const exit = a.exit && grantsExit(grant);
    if (a.exit && !exit) refused.push({ family: 4, address: "0.0.0.0", prefix: 0 });
    const sent = this.sent.get(router);
    let rttMs = this.routers.get(router)?.rttMs ?? null;
    if (sent && sent.seq === a.seq) {
      rttMs = this.now() - sent.at;
      this.sent.delete(router);
    }
    this.routers.set(router, { id: router, name, prefixes: ok.map((p) => ({ ...p, bytes: subnetBytes(p) })), exit, exit6: exit && (a.exit6 ?? false) && grant.some((g) => g.family === 6 && g.prefix === 0), dns: exit && (a.dns ?? false), seenAt: this.now(), rttMs });
    return refused;
  }

  /**
   * IP packets arrived from `router` (replies from its LAN): it is alive, so what it last advertised
   * stands even when its advert is late (queued behind bulk data on a loaded path). A withdrawal is
   * still an advert, so this never brings back a prefix it withdrew.
   */
  touch(router: NodeId): void {
    const r = this.routers.get(router);
    if (r) r.seenAt = Math.max(r.seenAt, this.now());
  }

  /** Forget a router (revoked, or its session closed for good). */
  forget(router: NodeId): void {
    this.routers.delete(router);
    this.sent.delete(router);
  }

  private healthy(r: RouterEntry): boolean {
    return this.now() - r.seenAt <= STALE_MS;
  }

  /** Drop routers silent for FORGET_MS. */
  expire(): void {
    for (const r of this.routers.values()) if (this.now() - r.seenAt > FORGET_MS) this.forget(r.id);
  }

  /** Every prefix some router advertised recently (what `[routes] accept` puts on the TUN). */
  prefixes(): Subnet[] {
    const seen = new Map<string, Subnet>();
    for (const r of this.routers.values()) for (const p of r.prefixes) seen.set(fmtPrefix(p), { family: p.family, address: p.address, prefix: p.prefix });
    return [...seen.values()];
  }

  /** The router for the destination address at `p[off]` (IP version `v`), or undefined. */
  route(p: Uint8Array, off: number, v: 4 | 6): NodeId | undefined {
    let best: (Subnet & { bytes: Uint8Array }) | undefined;
    for (const r of this.routers.values()) {
      if (!this.healthy(r)) continue;
      for (const s of r.prefixes) if (s.family === v && (!best || s.prefix > best.prefix) && inPrefix(p, off, s.bytes, s.prefix)) best = s;
    }
    return best ? this.choose(fmtPrefix(best)) : undefined;
  }

  /** The router in use for `prefix`: the current one while healthy, else the healthy one with the lowest RTT. */
  choose(prefix: string): NodeId | undefined {
    const candidates = [...this.routers.values()].filter((r) => this.healthy(r) && r.prefixes.some((p) => fmtPrefix(p) === prefix));
    const current = this.inUse.get(prefix);
    if (current && candidates.some((r) => r.id === current)) return current;
    candidates.sort((a, b) => (a.rttMs ?? Infinity) - (b.rttMs ?? Infinity) || (a.id < b.id ? -1 : 1));
    const pick = candidates[0]?.id;
    if (pick) this.inUse.set(prefix, pick);
    else this.inUse.delete(prefix);
    return pick;
  }

  /** Healthy exit nodes, best first (the current `auto` pick first while healthy). */
  exits(): ExitView[] {
    const list = [...this.routers.values()].filter((r) => r.exit && this.healthy(r));
    const current = this.inUse.get("exit");
    list.sort((a, b) => (a.id === current ? -1 : b.id === current ? 1 : (a.rttMs ?? Infinity) - (b.rttMs ?? Infinity)));
    if (list[0]) this.inUse.set("exit", list[0].id);
    return list.map((r) => ({ id: r.id, name: r.name, rttMs: r.rttMs, exit6: r.exit6, dns: r.dns }));
  }

  /** Whether `router` is a healthy exit now. */
  isExit(router: NodeId): boolean {
    const r = this.routers.get(router);
    return r !== undefined && r.exit && this.healthy(r);
  }

  view(): RouteView[] {
    const out: RouteView[] = [];
    for (const s of this.prefixes()) {
      const prefix = fmtPrefix(s);
      const routers = [...this.routers.values()].filter((r) => r.prefixes.some((p) => fmtPrefix(p) === prefix));
      out.push({ prefix, routers: routers.map((r) => ({ id: r.id, name: r.name, healthy: this.healthy(r), rtt_ms: r.rttMs })), via: this.choose(prefix) ?? null });
    }
    return out;
  }
}
