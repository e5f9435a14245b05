// Enrolment: how an invite lets a node get its certificate while the root stays offline.
//
// The root signs an enrolment certificate for a short-lived enrolment key, with the membership it may
// grant (name, IPv4, tags, subnets), when it was made, until when it may be used, and how long the
// membership it grants lasts:
//   "TRE2" | network id (16) | enrolment public key (1952) | issued at u64 s | usable until u64 s | grants for u32 s
//   | name length (1) | name ("" = the joiner picks) | ipv4 (4) | ipv4 prefix (1) | tag count (1) | (length | tag)*
//   | subnet count (1) | (family (1) | prefix length (1) | address (4 or 16))*
//   | ML-DSA-65 signature by the root (3309), context "trellis enrolment v1"
// Version 1 ("TRE1") has no issued-at and no subnets; it still verifies and grants no subnets.
// A certificate signed with the enrolment key may grant no more than this: the same name (or any when
// open), IPv4 and tags, subnets each inside a granted one, validity starting no earlier than issued at.
// The invite token carries the enrolment key's 32-byte seed, the certificate's SHA-256 and the seeds
// where the certificate is published (it is ~5.3 KB: too big for a token). The joiner fetches it,
// checks the hash, signs its own membership with the enrolment key, and embeds the enrolment
// certificate in it (issuer 1), so every verifier can follow the chain to the root.
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { createHash } from "node:crypto";
import { DSA_PUBLIC_BYTES, DSA_SIGNATURE_BYTES, sign, verify } from "../identity/identity.ts";
import { formatIpv4, parseIpv4 } from "../identity/address.ts";
import { TrustError } from "./errors.ts";
import { decodeSubnets, encodeSubnets, type Subnet } from "./subnet.ts";

const MAGIC = "TRE2";
const MAGIC_V1 = "TRE1";
export const ENROL_CONTEXT = "trellis enrolment v1";
export const TOKEN_PREFIX = "trellis1:";
/** How far before its grant's issue time a certificate from an invite may say it is valid (clock skew). */
export const INVITE_SKEW_S = 600;

export interface Enrolment {
  networkId: string;
  publicKey: Uint8Array;
  /** When the root made the grant (0 for version 1 grants: unknown). */
  issuedAt: number;
  usableUntil: number;
  grantsFor: number;
  name: string;
  ipv4?: string;
  ipv4Prefix: number;
  tags: string[];
  /** Subnets a certificate from this grant may list (each of its subnets inside one of these). */
  subnets: Subnet[];
}

function body(e: Enrolment): Uint8Array {
  const out: number[] = [...Buffer.from(MAGIC), ...Buffer.from(e.networkId, "hex"), ...e.publicKey];
  const t = Buffer.alloc(20);
  t.writeBigUInt64BE(BigInt(e.issuedAt));
  t.writeBigUInt64BE(BigInt(e.usableUntil), 8);
  t.writeUInt32BE(e.grantsFor, 16);
  out.push(...t, e.name.length, ...Buffer.from(e.name));
  const v4 = e.ipv4 ? parseIpv4(e.ipv4) : new Uint8Array(4);
  if (!v4) throw new TrustError("malformed", `enrolment ipv4 ${JSON.stringify(e.ipv4)} is not an IPv4 address`);
  out.push(...v4, e.ipv4Prefix, e.tags.length);
  for (const tag of e.tags) out.push(tag.length, ...Buffer.from(tag));
  encodeSubnets(e.subnets, out);
  return Uint8Array.from(out);
}

export function enrolmentKey(seed: Uint8Array): { publicKey: Uint8Array; dsaSecret: Uint8Array } {
  const k = ml_dsa65.keygen(seed);
  return { publicKey: k.publicKey, dsaSecret: k.secretKey };
}

export function issueEnrolment(e: Enrolment, root: { dsaSecret: Uint8Array }): Uint8Array {
  const b = body(e);
  return Uint8Array.from([...b, ...sign(root as never, ENROL_CONTEXT, b)]);
}

export function decodeEnrolment(c: Uint8Array): { enrolment: Enrolment; signed: Uint8Array; signature: Uint8Array } {
  const fail = (why: string) => new TrustError("malformed", `enrolment certificate: ${why}`);
  const end = c.length - DSA_SIGNATURE_BYTES;
  let off = 0;
  const need = (n: number) => {
    if (off + n > end) throw fail("truncated");
    const v = c.subarray(off, off + n);
    off += n;
    return v;
  };
  const magic = Buffer.from(need(4)).toString();
  if (magic !== MAGIC && magic !== MAGIC_V1) throw fail("not version 1 or 2");
  const v1 = magic === MAGIC_V1;
  const networkId = Buffer.from(need(16)).toString("hex");
  const publicKey = Uint8Array.from(need(DSA_PUBLIC_BYTES));
  const t = Buffer.from(need(v1 ? 12 : 20));
  const issuedAt = v1 ? 0 : Number(t.readBigUInt64BE(0));
  const times = v1 ? t : t.subarray(8);
  const name = Buffer.from(need(need(1)[0])).toString();
  const v4 = need(4);
  const ipv4Prefix = need(1)[0];
  const tags: string[] = [];
  for (let n = need(1)[0]; n > 0; n--) tags.push(Buffer.from(need(need(1)[0])).toString());
  const subnets = v1 ? [] : decodeSubnets(need);
  if (off !== end) throw fail("trailing bytes");
  const enrolment = { networkId, publicKey, issuedAt, usableUntil: Number(times.readBigUInt64BE(0)), grantsFor: times.readUInt32BE(8), name, ipv4: v4.every((x) => x === 0) ? undefined : formatIpv4(v4), ipv4Prefix, tags, subnets };
  return { enrolment, signed: c.subarray(0, off), signature: c.subarray(off) };
}

/** Check the root's signature and network on an enrolment certificate. */
export function verifyEnrolment(c: Uint8Array, rootPub: Uint8Array, networkId: string): Enrolment {
  const { enrolment, signed, signature } = decodeEnrolment(c);
  if (enrolment.networkId !== networkId) throw new TrustError("wrong-network", `enrolment is for network ${enrolment.networkId}`);
  if (!verify(rootPub, ENROL_CONTEXT, signed, signature)) throw new TrustError("bad-signature", "enrolment certificate is not signed by the network root");
  return enrolment;
}

export function sha256hex(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

export interface InviteToken {
  networkId: string;
  seed: Uint8Array; // the enrolment key's seed
  hash: string; // SHA-256 of the enrolment's bytes (the seed's store keys it so)
  expires: number; // unix seconds
  seeds: string[];
}

/** `trellis1:` + base64url(version 1 | network id 16 | key seed 32 | hash 32 | expires u32 | seed count | (length | URL)*). */
export function encodeToken(t: InviteToken): string {
  const urls = t.seeds.map((s) => Buffer.from(s));
  const head = Buffer.alloc(1 + 16 + 32 + 32 + 4 + 1);
  head[0] = 1;
  Buffer.from(t.networkId, "hex").copy(head, 1);
  Buffer.from(t.seed).copy(head, 17);
  Buffer.from(t.hash, "hex").copy(head, 49);
  head.writeUInt32BE(t.expires, 81);
  head[85] = urls.length;
  return TOKEN_PREFIX + Buffer.concat([head, ...urls.flatMap((u) => [Buffer.of(u.length), u])]).toString("base64url");
}

export function decodeToken(s: string): InviteToken {
  const bad = () => new TrustError("malformed", "the invite token is damaged (copy it again, whole)");
  const t = s.trim();
  if (!t.startsWith(TOKEN_PREFIX)) throw new TrustError("malformed", `an invite token starts with ${TOKEN_PREFIX}`);
  const b = Buffer.from(t.slice(TOKEN_PREFIX.length), "base64url");
  if (b.length < 86 || b[0] !== 1) throw bad();
  const seeds: string[] = [];
  let off = 86;
  for (let i = 0; i < b[85]; i++) {
    const len = b[off++];
    if (len === undefined || off + len > b.length) throw bad();
    seeds.push(b.subarray(off, off + len).toString());
    off += len;
  }
  if (off !== b.length) throw bad();
  return { networkId: b.subarray(1, 17).toString("hex"), seed: Uint8Array.from(b.subarray(17, 49)), hash: b.subarray(49, 81).toString("hex"), expires: b.readUInt32BE(81), seeds };
}
