// Handshake message layouts (after reassembly from fragments). All integers little-endian.
//
// Initiation (initiator → responder), 8 859 bytes + claims:
//   0        4        36             1220           2308
//   +--------+--------+--------------+--------------+---------------------------+--------------------+-------+-------+
//   | sender | e.x25519 | e.kem pk   | ct to s.kem  | enc(static identity 3168  | enc(signature      | mac1  | mac2  |
//   | index  |  (32)  |  (1184)      |  (1088)      |  + timestamp 8 + claims   |  3309) + tag 16    | (16)  | (16)  |
//   |  (4)   |        |              |              |  len 2 + claims) + tag 16 |                    |       |       |
//   +--------+--------+--------------+--------------+---------------------------+--------------------+-------+-------+
// mac2 is zero unless the initiator holds a cookie from the responder (see the cookie reply).
// Response (responder → initiator), 4 475 bytes + claims — always smaller than the initiation:
//   +--------+----------+----------+-------------+------------------------------------------+-------+
//   | sender | receiver | e.x25519 | ct to e.kem | enc(claims len 2 + claims + signature 3309) | mac1  |
//   |  (4)   |   (4)    |  (32)    |   (1088)    |   + tag 16                               | (16)  |
//   +--------+----------+----------+-------------+------------------------------------------+-------+
// Cookie reply (responder under load → initiator), 52 bytes, one datagram, never fragmented:
//   +------+-------+----------+-------------+-------------------------+
//   | 0xC3 | 0 0 0 | receiver | nonce (12)  | enc(cookie 16) + tag 16 |
//   |      |       |   (4)    |             |                         |
//   +------+-------+----------+-------------+-------------------------+
import { DSA_SIGNATURE_BYTES, KEM_CIPHERTEXT_BYTES, KEM_PUBLIC_BYTES, PUBLIC_IDENTITY_BYTES, X25519_BYTES } from "../identity/identity.ts";
import { HandshakeError } from "./errors.ts";
import { TAG_BYTES } from "./kdf.ts";

export const MAC1_BYTES = 16;
export const MAC2_BYTES = 16;
export const COOKIE_BYTES = 16;
export const TYPE_COOKIE_REPLY = 0xc3;
export const COOKIE_REPLY_BYTES = 8 + 12 + COOKIE_BYTES + TAG_BYTES;
export const TIMESTAMP_BYTES = 8;
export const MAX_CLAIMS = 16384; // room for a membership certificate with its enrolment chain (~11.6 KB as base64 JSON)

export const INIT_FIXED =
  4 + X25519_BYTES + KEM_PUBLIC_BYTES + KEM_CIPHERTEXT_BYTES + (PUBLIC_IDENTITY_BYTES + TIMESTAMP_BYTES + 2 + TAG_BYTES) + (DSA_SIGNATURE_BYTES + TAG_BYTES) + MAC1_BYTES + MAC2_BYTES;
export const RESP_FIXED = 8 + X25519_BYTES + KEM_CIPHERTEXT_BYTES + (2 + DSA_SIGNATURE_BYTES + TAG_BYTES) + MAC1_BYTES;

export interface Initiation {
  sender: number;
  ephemeralX: Uint8Array;
  ephemeralKem: Uint8Array;
  staticCt: Uint8Array;
  encStatic: Uint8Array;
  encSig: Uint8Array;
  mac1: Uint8Array;
  /** The bytes mac1 covers. */
  macced: Uint8Array;
  mac2: Uint8Array;
  /** The bytes mac2 covers (everything before it, mac1 included). */
  macced2: Uint8Array;
}

export interface Response {
  sender: number;
  receiver: number;
  ephemeralX: Uint8Array;
  ephemeralCt: Uint8Array;
  encPayload: Uint8Array;
  mac1: Uint8Array;
  macced: Uint8Array;
}

class Reader {
  off = 0;
  constructor(readonly b: Uint8Array) {}
  take(n: number): Uint8Array {
    const out = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }
  u32(): number {
    const v = new DataView(this.b.buffer, this.b.byteOffset + this.off, 4).getUint32(0, true);
    this.off += 4;
    return v;
  }
}

export function decodeInitiation(b: Uint8Array): Initiation {
  if (b.length < INIT_FIXED || b.length > INIT_FIXED + MAX_CLAIMS)
    throw new HandshakeError("malformed", `initiation of ${b.length} bytes (want ${INIT_FIXED}..${INIT_FIXED + MAX_CLAIMS})`);
  const claims = b.length - INIT_FIXED;
  const r = new Reader(b);
  return {
    sender: r.u32(),
    ephemeralX: r.take(X25519_BYTES),
    ephemeralKem: r.take(KEM_PUBLIC_BYTES),
    staticCt: r.take(KEM_CIPHERTEXT_BYTES),
    encStatic: r.take(PUBLIC_IDENTITY_BYTES + TIMESTAMP_BYTES + 2 + claims + TAG_BYTES),
    encSig: r.take(DSA_SIGNATURE_BYTES + TAG_BYTES),
    macced: b.subarray(0, b.length - MAC1_BYTES - MAC2_BYTES),
    mac1: r.take(MAC1_BYTES),
    macced2: b.subarray(0, b.length - MAC2_BYTES),
    mac2: r.take(MAC2_BYTES),
  };
}

export function decodeResponse(b: Uint8Array): Response {
  if (b.length < RESP_FIXED || b.length > RESP_FIXED + MAX_CLAIMS)
    throw new HandshakeError("malformed", `response of ${b.length} bytes (want ${RESP_FIXED}..${RESP_FIXED + MAX_CLAIMS})`);
  const claims = b.length - RESP_FIXED;
  const r = new Reader(b);
  return {
    sender: r.u32(),
    receiver: r.u32(),
    ephemeralX: r.take(X25519_BYTES),
    ephemeralCt: r.take(KEM_CIPHERTEXT_BYTES),
    encPayload: r.take(2 + claims + DSA_SIGNATURE_BYTES + TAG_BYTES),
    macced: b.subarray(0, b.length - MAC1_BYTES),
    mac1: r.take(MAC1_BYTES),
  };
}

export function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

export function u16le(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff, v >> 8);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
