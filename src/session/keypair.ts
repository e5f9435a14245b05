// A keypair: one direction's send key and the other's receive key from one handshake, and the data
// packet framing that uses them (AES-256-GCM through node:crypto).
//
// Data packet:
//   0      1          4               8                       16
//   +------+----------+---------------+-----------------------+------------------------+--------+
//   | 0xC4 | reserved | receiver index|  counter (u64 LE)     | AES-256-GCM ciphertext | tag 16 |
//   |      |  (zero)  |   (u32 LE)    |                       |                        |        |
//   +------+----------+---------------+-----------------------+------------------------+--------+
// The 16-byte header is the AAD; the nonce is 4 zero bytes then the counter (little-endian).
import { createCipheriv, createDecipheriv } from "node:crypto";
import { ReplayWindow } from "./replay.ts";
import { TYPE_DATA } from "./wire.ts";
import type { TransportKeys } from "../handshake/machine.ts";

export const DATA_HEADER = 16;
export const DATA_TAG = 16;
export const DATA_OVERHEAD = DATA_HEADER + DATA_TAG;

export class Keypair {
  sendCounter = 0;
  readonly replay = new ReplayWindow();
  private readonly sendKey: Buffer;
  private readonly recvKey: Buffer;
  private readonly nonce = Buffer.alloc(12);
  private readonly recvNonce = Buffer.alloc(12);

  constructor(
    keys: TransportKeys,
    readonly localIndex: number,
    readonly remoteIndex: number,
    readonly isInitiator: boolean,
    readonly created: number,
  ) {
    this.sendKey = Buffer.from(keys.send);
    this.recvKey = Buffer.from(keys.recv);
  }

  /** Seal `payload` into a new data packet with the next counter. */
  seal(payload: Uint8Array): Uint8Array {
    const counter = this.sendCounter++;
    const out = Buffer.allocUnsafe(DATA_OVERHEAD + payload.length);
    out.writeUInt32LE(TYPE_DATA, 0); // type byte, then three zero bytes
    out.writeUInt32LE(this.remoteIndex, 4);
    out.writeBigUInt64LE(BigInt(counter), 8);
    this.nonce.writeUInt32LE(0, 0);
    this.nonce.writeBigUInt64LE(BigInt(counter), 4);
    const c = createCipheriv("aes-256-gcm", this.sendKey, this.nonce);
    c.setAAD(out.subarray(0, DATA_HEADER));
    let off = DATA_HEADER + c.update(payload).copy(out, DATA_HEADER);
    off += c.final().copy(out, off);
    c.getAuthTag().copy(out, off);
    return out;
  }

  /**
   * Open a data packet for this keypair: the replay window is checked first (cheap) and moved only
   * after the tag verifies. Returns the payload, "replay", or null when the tag fails.
   */
  open(packet: Uint8Array): Uint8Array | "replay" | null {
    const view = new DataView(packet.buffer, packet.byteOffset, packet.length);
    const counter = view.getUint32(8, true) + view.getUint32(12, true) * 2 ** 32;
    if (!this.replay.check(counter)) return "replay";
    // The nonce is 4 zero bytes then the counter as sent: copy its 8 bytes from the header.
    this.recvNonce.set(packet.subarray(8, 16), 4);
    const d = createDecipheriv("aes-256-gcm", this.recvKey, this.recvNonce);
    d.setAAD(packet.subarray(0, DATA_HEADER));
    d.setAuthTag(packet.subarray(packet.length - DATA_TAG));
    let plain: Buffer;
    try {
      plain = d.update(packet.subarray(DATA_HEADER, packet.length - DATA_TAG));
      d.final(); // GCM: no more bytes, only the tag check
    } catch {
      return null;
    }
    this.replay.update(counter);
    return plain;
  }
}

/** The receiver index of a data packet (to find its keypair), or -1 if it is not one. */
export function dataReceiver(packet: Uint8Array): number {
  if (packet.length < DATA_OVERHEAD || packet[0] !== TYPE_DATA) return -1;
  return new DataView(packet.buffer, packet.byteOffset).getUint32(4, true);
}
