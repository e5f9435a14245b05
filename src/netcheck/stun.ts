// STUN client messages for netcheck (RFC 5389): a Binding Request, padded to a given size when probing
// the path MTU, and the mapped address read back from a Binding success response.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |0 0|     message type (0x0001)   |       message length        |
//  |                  magic cookie (0x2112A442)                    |
//  |                 transaction id (96 bits)                      |
//  +---------------------------------------------------------------+
//  |   PADDING (0x0026)            |   length                      |   (only when padded)
//  |   zero bytes ...                                              |
import { randomBytes } from "node:crypto";

export const HEADER_BYTES = 20;
const MAGIC = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const MAPPED_ADDRESS = 0x0001;
const XOR_MAPPED_ADDRESS = 0x0020;
/** RFC 5780's PADDING attribute: bytes a server ignores. */
const PADDING = 0x0026;

export class StunError extends Error {
  constructor(readonly code: "too-small" | "malformed", message: string) {
    super(`stun: ${message}`);
    this.name = "StunError";
  }
}

/**
 * The smallest request a trellis seed answers: no answer is longer than its request (32 bytes for IPv4,
 * 44 for IPv6), so a bare 20-byte request gets none (src/seed/stun.ts).
 */
export const ANSWERED_BYTES = 48;

/** A Binding Request of exactly `size` bytes (20, or 24 and more in steps of 4), and its transaction id. */
export function bindingRequest(size = ANSWERED_BYTES): { message: Uint8Array; txid: Uint8Array } {
  if (size !== HEADER_BYTES && (size < HEADER_BYTES + 4 || size % 4 !== 0)) throw new StunError("too-small", `bindingRequest: size ${size} is not 20 or a multiple of 4 from 24`);
  const message = new Uint8Array(size);
  const dv = new DataView(message.buffer);
  dv.setUint16(0, BINDING_REQUEST);
  dv.setUint16(2, size - HEADER_BYTES);
  dv.setUint32(4, MAGIC);
  const txid = randomBytes(12);
  message.set(txid, 8);
  if (size > HEADER_BYTES) {
    dv.setUint16(20, PADDING);
    dv.setUint16(22, size - HEADER_BYTES - 4);
  }
  return { message, txid: new Uint8Array(txid) };
}

/** The transaction id of a Binding success response, or null when `b` is not one. */
export function responseTxid(b: Uint8Array): Uint8Array | null {
  if (b.length < HEADER_BYTES) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  if (dv.getUint16(0) !== BINDING_SUCCESS || dv.getUint32(4) !== MAGIC || dv.getUint16(2) + HEADER_BYTES !== b.length) return null;
  return b.subarray(8, 20);
}

/** The address a Binding success response says we were seen from (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS). */
export function mappedAddress(b: Uint8Array): { address: string; port: number } {
  const txid = responseTxid(b);
  if (!txid) throw new StunError("malformed", "mappedAddress: not a Binding success response");
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  let plain: { address: string; port: number } | undefined;
  for (let off = HEADER_BYTES; off + 4 <= b.length; ) {
    const type = dv.getUint16(off), len = dv.getUint16(off + 2);
    const v = off + 4;
    if (v + len > b.length) throw new StunError("malformed", "mappedAddress: attribute runs past the message");
    if ((type === XOR_MAPPED_ADDRESS || type === MAPPED_ADDRESS) && len >= 8) {
      const family = b[v + 1];
      const xor = type === XOR_MAPPED_ADDRESS;
      const port = dv.getUint16(v + 2) ^ (xor ? MAGIC >>> 16 : 0);
      const key = new Uint8Array(16);
      if (xor) {
        new DataView(key.buffer).setUint32(0, MAGIC);
        key.set(txid, 4);
      }
      if (family === 1 && len === 8) {
        const a = [0, 1, 2, 3].map((i) => b[v + 4 + i] ^ key[i]);
        const r = { address: a.join("."), port };
        if (xor) return r;
        plain = r;
      } else if (family === 2 && len === 20) {
        const a: string[] = [];
        for (let i = 0; i < 16; i += 2) a.push((((b[v + 4 + i] ^ key[i]) << 8) | (b[v + 5 + i] ^ key[i + 1])).toString(16));
        const r = { address: a.join(":").replace(/(^|:)0(:0)+(:|$)/, "::"), port };
        if (xor) return r;
        plain = r;
      }
    }
    off = v + len + ((4 - (len % 4)) % 4);
  }
  if (plain) return plain;
  throw new StunError("malformed", "mappedAddress: no mapped address in the response");
}
