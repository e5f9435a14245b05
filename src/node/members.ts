// Member lookups: which member of our network holds an overlay IPv4 address or a name, asked of the
// relays we link to, so that the first packet to a member we never met can wait (bounded) and go.
//
// Query (hop frame HOP_MEMBER_LOOKUP):  kind u8 | key
//   kind 4: key = the IPv4 address (4 bytes)         kind 1: key = the member's name (a DNS label, UTF-8)
// Answer (HOP_MEMBER): the holder's membership certificate (root-signed; src/trust/certificate.ts).
//
// Who learns what: a relay answers only a neighbour that proved membership of a network (its
// certificate, checked when the link or session was admitted), and only with the certificate of a
// member of that same network; anyone else (an allow-listed node outside the network, a member of
// another network) gets no answer at all. The asker checks the certificate against its own networks
// (root signature, expiry, revocation) and takes it only when it answers a question it asked, so a
// relay can neither invent a holder nor make us verify what we did not ask for.
import { formatIpv4, parseIpv4 } from "../identity/address.ts";
import type { NodeId } from "../identity/identity.ts";
import { decodeCertificate, type Membership } from "../trust/certificate.ts";

export const QUERY_IPV4 = 4;
export const QUERY_NAME = 1;
/** kind 2: key = an index (1 byte): the index-th member whose certificate grants subnets (a router). */
export const QUERY_ROUTER = 2;
export const MAX_ROUTER_INDEX = 16;
/** Lookups waited for (people) and passed on (for neighbours) at once; how long people wait at most. */
export const WAITS = 256;
export const WAIT_MS = 10_000;

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export type MemberQuery = { ipv4: string } | { name: string } | { router: number };

export function encodeQuery(q: MemberQuery): Uint8Array {
  if ("router" in q) {
    if (!Number.isInteger(q.router) || q.router < 0 || q.router >= MAX_ROUTER_INDEX) throw new RangeError(`router index ${q.router} is not 0-${MAX_ROUTER_INDEX - 1}`);
    return Uint8Array.of(QUERY_ROUTER, q.router);
  }
  if ("ipv4" in q) {
    const b = parseIpv4(q.ipv4);
    if (!b) throw new RangeError(`not an IPv4 address: ${q.ipv4}`);
    return Uint8Array.of(QUERY_IPV4, ...b);
  }
  if (!LABEL.test(q.name)) throw new RangeError(`not a member name: ${q.name}`);
  return Uint8Array.of(QUERY_NAME, ...new TextEncoder().encode(q.name));
}

/** A neighbour's query, or undefined when malformed. */
export function decodeQuery(b: Uint8Array): MemberQuery | undefined {
  if (b[0] === QUERY_IPV4 && b.length === 5) return { ipv4: formatIpv4(b, 1) };
  if (b[0] === QUERY_ROUTER && b.length === 2 && b[1] < MAX_ROUTER_INDEX) return { router: b[1] };
  if (b[0] === QUERY_NAME && b.length >= 2 && b.length <= 64) {
    const name = new TextDecoder().decode(b.subarray(1));
    return LABEL.test(name) ? { name } : undefined;
  }
  return undefined;
}

/** A member this node knows: from its own certificates, or a peer's that was checked on admission. */
export interface KnownMember {
  membership: Membership;
  cert: Uint8Array;
}

/**
 * The relay's side: the certificate to give `asker` for `query`, or undefined. `askerNetworks` are the
 * networks the asker proved membership of (empty for a non-member); only a member of one of those
 * networks is ever named, and never a revoked or expired one.
 */
export function answerQuery(
  query: MemberQuery,
  askerNetworks: string[],
  known: Iterable<KnownMember>,
  isRevoked: (networkId: string, id: NodeId) => boolean,
  now = Date.now() / 1000,
): Uint8Array | undefined {
  if (askerNetworks.length === 0) return undefined;
  let routers = 0;
  for (const k of known) {
    const m = k.membership;
    if (!askerNetworks.includes(m.networkId) || m.notAfter < now || isRevoked(m.networkId, m.nodeId)) continue;
    if ("router" in query) {
      if (m.subnets.length && routers++ === query.router) return k.cert;
      continue;
    }
    if ("ipv4" in query ? m.ipv4 === query.ipv4 : m.name === query.name) return k.cert;
  }
  return undefined;
}

/** The one certificate among `certs` (base64, as peers present them) for `networkId`, undecoded parts skipped. */
export function certFor(certs: string[], networkId: string, nodeId: NodeId): Uint8Array | undefined {
  for (const c of certs.slice(0, 4)) {
    try {
      const bytes = Uint8Array.from(Buffer.from(c, "base64"));
      const m = decodeCertificate(bytes).membership;
      if (m.networkId === networkId && m.nodeId === nodeId) return bytes;
    } catch {}
  }
  return undefined;
}

/**
 * A relay's lookups passed on to the other relays for neighbours that asked (one hop: lookups from
 * relays are never passed on). Bounded: WAITS queries, 8 askers each, FORWARD_MS each.
 */
export class MemberForwards {
  private readonly asked = new Map<string, { at: number; askers: Set<NodeId> }>();
  static readonly FORWARD_MS = 5_000;

  constructor(private readonly now: () => number = () => Date.now()) {}

  /** Note that `asker` waits for `q`; true when the query should go out now (not already out). */
  add(q: MemberQuery, asker: NodeId): boolean {
    const now = this.now();
    for (const [k, e] of this.asked) if (now - e.at > MemberForwards.FORWARD_MS) this.asked.delete(k);
    const key = keyOf(q);
    const e = this.asked.get(key);
    if (e) {
      if (e.askers.size < 8) e.askers.add(asker);
      return false;
    }
    if (this.asked.size >= WAITS) return false;
    this.asked.set(key, { at: now, askers: new Set([asker]) });
    return true;
  }

  /** The neighbours waiting for an answer this membership gives (each told once). */
  take(m: Membership): NodeId[] {
    const out = new Set<NodeId>();
    for (const key of [keyOf({ name: m.name }), ...(m.ipv4 ? [keyOf({ ipv4: m.ipv4 })] : [])]) {
      const e = this.asked.get(key);
      if (!e || this.now() - e.at > MemberForwards.FORWARD_MS) continue;
      this.asked.delete(key);
      for (const a of e.askers) out.add(a);
    }
    return [...out];
  }
}

const keyOf = (q: MemberQuery) => ("ipv4" in q ? `4:${q.ipv4}` : "router" in q ? `r:${q.router}` : `n:${q.name}`);

/**
 * The asker's side: people waiting for a name or an address (ping, DNS); bounded: WAITS lookups, each
 * for WAIT_MS at most. Packets waiting for an IPv4 address are in the node's hold (src/datapath/hold.ts,
 * kind "member"): `held` says which addresses those wait for.
 */
export class MemberWaits {
  private readonly waiters = new Map<string, { since: number; wake: (() => void)[] }>();

  constructor(
    private readonly held: (ipv4: string) => boolean,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Wait until `q` is answered (or `ms` passes); resolves either way. */
  wait(q: MemberQuery, ms: number): Promise<void> {
    const key = keyOf(q);
    return new Promise((resolve) => {
      let w = this.waiters.get(key);
      if (!w) {
        if (this.waiters.size >= WAITS) return resolve();
        this.waiters.set(key, (w = { since: this.now(), wake: [] }));
      }
      const t = setTimeout(resolve, ms);
      w.wake.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Whether a certificate naming this membership answers something we asked. */
  wants(m: Membership): boolean {
    return (m.ipv4 !== undefined && (this.held(m.ipv4) || this.waiters.has(keyOf({ ipv4: m.ipv4 })))) || this.waiters.has(keyOf({ name: m.name }));
  }

  /** The membership is known now: its waiters are woken. */
  answered(m: Membership): void {
    for (const key of [keyOf({ name: m.name }), ...(m.ipv4 ? [keyOf({ ipv4: m.ipv4 })] : [])]) {
      const w = this.waiters.get(key);
      this.waiters.delete(key);
      for (const f of w?.wake ?? []) f();
    }
  }

  /** What people still wait for (to ask again), after dropping what waited longer than WAIT_MS. */
  pending(): MemberQuery[] {
    const now = this.now();
    const out: MemberQuery[] = [];
    for (const [key, w] of this.waiters) {
      if (now - w.since > WAIT_MS) this.waiters.delete(key);
      else out.push(key.startsWith("4:") ? { ipv4: key.slice(2) } : { name: key.slice(2) });
    }
    return out;
  }
}
