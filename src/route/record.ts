// Discovery records: a node's signed statement of where it can be reached, spread by gossip.
//
// Layout (version TRD1, big-endian, deterministic):
//   "TRD1" | flags u8 (bit 0: relay; bits 1-7: a relay's load in percent, 0-100) | node id 16
//   | issued u64 ms | expires u64 ms
//   | n u8 | relays n×16 (for an edge node: the relays it is attached to; for a relay: the relays it links to)
//   | hints u16 length + UTF-8 JSON array of strings (seed URLs: how to reach it without the overlay)
//   | public identity u16 length + bytes | ML-DSA-65 signature over everything before it
// The public identity is in the record so that a node can start a session with a member it has never
// met: the node id is the hash of those keys, so nobody can put their keys under another's id.
import { decodePublicIdentity, encodePublicIdentity, nodeIdBytes, nodeIdFromBytes, sign, verify, type Identity, type NodeId, type PublicIdentity } from "../identity/identity.ts";
import { verifyAsync } from "../identity/fastsig.ts";

import { RouteError } from "./errors.ts";

export const RECORD_CONTEXT = "trellis record v1";
const MAGIC = "TRD1";
export const MAX_RECORD_RELAYS = 8;
export const MAX_RECORD_BYTES = 8192;
/** How long a record is valid; nodes republish well before. */
export const RECORD_LIFETIME_MS = 10 * 60_000;
/** A record may not claim to stay valid longer than this from now (a record "valid forever" is refused). */
export const MAX_RECORD_AHEAD_MS = RECORD_LIFETIME_MS + 5 * 60_000;
const MAX_HINTS = 8, MAX_HINT_CHARS = 200;

/** Whether a hint is a seed URL as a config's [network] seeds takes it: http(s)://host[:port], nothing more. */
function seedUrl(h: string): boolean {
  if (h.length > MAX_HINT_CHARS) return false;
  try {
    const u = new URL(h);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "" && (u.pathname === "/" || u.pathname === "") && !u.search && !u.hash && !u.username;
  } catch {
    return false;
  }
}

export interface RecordFields {
  id: NodeId;
  relay: boolean;
  /** A relay's load in percent (the larger of linked peers / max_peers and forwarded rate / cap). */
  load?: number;
  relays: NodeId[];
  hints: string[];
  issued: number;
  expires: number;
}

export interface DiscoveryRecord extends RecordFields {
  /** The public identity bytes (src/identity encoding), or whatever the simulation's crypto uses. */
  pub: Uint8Array;
  /** The whole signed record, as it travels. */
  bytes: Uint8Array;
}

/** Signing and checking records: ML-DSA for real nodes; the simulation plugs in something cheap. */
export interface RecordCrypto {
  publicBytes: Uint8Array;
  sign(body: Uint8Array): Uint8Array;
  /** True when `sig` is `id`'s signature over `body` and `pub` hashes to `id`. */
  verify(id: NodeId, pub: Uint8Array, body: Uint8Array, sig: Uint8Array): boolean;
  /** verify(), asynchronously and ~20× cheaper where it can (../identity/fastsig.ts); optional. */
  verifyAsync?(id: NodeId, pub: Uint8Array, body: Uint8Array, sig: Uint8Array): Promise<boolean>;
}

export function identityRecordCrypto(identity: Identity): RecordCrypto {
  return {
    publicBytes: encodePublicIdentity(identity.public),
    sign: (body) => sign(identity, RECORD_CONTEXT, body),
    verify: (id, pub, body, sig) => {
      const p = publicOf(id, pub);
      return !!p && verify(p, RECORD_CONTEXT, body, sig);
    },
    verifyAsync: async (id, pub, body, sig) => {
      const p = publicOf(id, pub);
      return !!p && verifyAsync(p, RECORD_CONTEXT, body, sig);
    },
  };
}

/** The public identity in a record, if it is `id`'s. */
function publicOf(id: NodeId, pub: Uint8Array): PublicIdentity | undefined {
  try {
    const p = decodePublicIdentity(pub);
    return p.id === id ? p : undefined;
  } catch {
    return undefined;
  }
}

/** The public identity in a real node's record. */
export function recordIdentity(r: DiscoveryRecord): PublicIdentity | undefined {
  try {
    const p = decodePublicIdentity(r.pub);
    return p.id === r.id ? p : undefined;
  } catch {
    return undefined;
  }
}

export function encodeRecord(f: RecordFields, crypto: RecordCrypto): Uint8Array {
  if (f.relays.length > MAX_RECORD_RELAYS) throw new RouteError("too-many-relays", `encodeRecord: a record lists at most ${MAX_RECORD_RELAYS} relays`);
  const hints = new TextEncoder().encode(JSON.stringify(f.hints));
  const pub = crypto.publicBytes;
  const body = new Uint8Array(4 + 1 + 16 + 16 + 1 + 16 * f.relays.length + 2 + hints.length + 2 + pub.length);
  const v = new DataView(body.buffer);
  body.set(new TextEncoder().encode(MAGIC), 0);
  body[4] = (f.relay ? 1 : 0) | (Math.min(100, Math.max(0, Math.round(f.load ?? 0))) << 1);
  body.set(nodeIdBytes(f.id), 5);
  v.setBigUint64(21, BigInt(f.issued));
  v.setBigUint64(29, BigInt(f.expires));
  body[37] = f.relays.length;
  let o = 38;
  for (const r of f.relays) body.set(nodeIdBytes(r), (o += 16) - 16);
  v.setUint16(o, hints.length);
  body.set(hints, o + 2);
  o += 2 + hints.length;
  v.setUint16(o, pub.length);
  body.set(pub, o + 2);
  const sig = crypto.sign(body);
  const out = new Uint8Array(body.length + sig.length);
  out.set(body);
  out.set(sig, body.length);
  return out;
}

/**
 * A record's (or an unsigned record body's) node id, issue time and relay flag, read without checking
 * anything: enough to skip a duplicate before paying for the signature.
 */
export function peekRecord(b: Uint8Array): { id: NodeId; issued: number; relay: boolean } | undefined {
  if (b.length < 38 || b[0] !== 0x54 || b[1] !== 0x52 || b[2] !== 0x44 || b[3] !== 0x31) return undefined; // "TRD1"
  return { id: nodeIdFromBytes(b.subarray(5, 21)), issued: Number(new DataView(b.buffer, b.byteOffset + 21, 8).getBigUint64(0)), relay: (b[4] & 1) === 1 };
}

/** A record's signature and what it covers, for a check ahead of decodeRecord (RecordCrypto.verifyAsync); undefined when it does not parse. */
export function recordSignature(b: Uint8Array): { id: NodeId; pub: Uint8Array; body: Uint8Array; sig: Uint8Array } | undefined {
  const r = parseRecord(b);
  return typeof r === "string" ? undefined : { id: r.id, pub: r.pub, body: r.body, sig: r.sig };
}

/**
 * Parse and check a record; a string says what is wrong with it. `signatureChecked`: recordSignature's
 * parts were verified already (asynchronously, within the same budget): the rest is still checked.
 */
export function decodeRecord(b: Uint8Array, crypto: RecordCrypto, now: number, signatureChecked = false): DiscoveryRecord | string {
  const p = parseRecord(b);
  if (typeof p === "string") return p;
  const { r, id } = p;
  if (r.expires <= now) return `record of ${id} expired`;
  if (r.expires - now > MAX_RECORD_AHEAD_MS || r.expires < r.issued) return `record of ${id} claims to stay valid past ${MAX_RECORD_AHEAD_MS / 60_000} min from now`;
  if (r.issued > now + 120_000) return `record of ${id} is from the future`;
  if (!signatureChecked && !crypto.verify(id, p.pub, p.body, p.sig)) return `record of ${id}: bad signature`;
  return r;
}

/** A record's fields and signed parts, unchecked; a string says why it does not parse. */
function parseRecord(b: Uint8Array): { r: DiscoveryRecord; id: NodeId; pub: Uint8Array; body: Uint8Array; sig: Uint8Array } | string {
  if (b.length > MAX_RECORD_BYTES) return `record is ${b.length} bytes (at most ${MAX_RECORD_BYTES})`;
  if (b.length < 40 || new TextDecoder().decode(b.subarray(0, 4)) !== MAGIC) return "not a TRD1 record";
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const n = b[37];
  if (n > MAX_RECORD_RELAYS) return `record lists ${n} relays (at most ${MAX_RECORD_RELAYS})`;
  let o = 38 + 16 * n;
  if (b.length < o + 2) return "record truncated";
  const hl = v.getUint16(o);
  if (b.length < o + 2 + hl + 2) return "record truncated";
  let hints: unknown;
  try {
    hints = JSON.parse(new TextDecoder().decode(b.subarray(o + 2, o + 2 + hl)));
  } catch {
    return "record hints are not JSON";
  }
  if (!Array.isArray(hints) || !hints.every((h) => typeof h === "string")) return "record hints are not a list of strings";
  if (hints.length > MAX_HINTS || !hints.every(seedUrl)) return "record hints are not seed URLs (http:// or https://HOST:PORT)";
  o += 2 + hl;
  const pl = v.getUint16(o);
  if (b.length <= o + 2 + pl) return "record truncated";
  const pub = b.slice(o + 2, o + 2 + pl);
  const body = b.subarray(0, o + 2 + pl);
  const sig = b.subarray(o + 2 + pl);
  const id = nodeIdFromBytes(b.subarray(5, 21));
  const r: DiscoveryRecord = {
    id,
    relay: (b[4] & 1) === 1,
    load: Math.min(100, b[4] >> 1),
    relays: Array.from({ length: n }, (_, i) => nodeIdFromBytes(b.subarray(38 + 16 * i, 54 + 16 * i))),
    hints: hints as string[],
    issued: Number(v.getBigUint64(21)),
    expires: Number(v.getBigUint64(29)),
    pub,
    bytes: b.slice(),
  };
  return { r, id, pub, body, sig };
}
