// "Packet too big": what the overlay tells a local sender whose packet does not fit the path's fast
// channel, as a router with a smaller next hop would (ICMP "fragmentation needed" for IPv4 with DF set,
// ICMPv6 "packet too big"). The sender's kernel then sends smaller packets (TCP lowers its segment
// size); the packet that was too big still goes, whole, over the data channel, so nothing is lost.
// The message comes from the packet's destination address, so it enters through the TUN like any
// packet from that peer.

/** IPv6 links must carry 1280 bytes: a smaller "packet too big" would be ignored. */
export const IPV6_MIN_MTU = 1280;
/** Every IPv4 link carries 68 bytes; anything less is not a size to tell a sender. */
const IPV4_MIN_MTU = 68;
const IPV4_REPLY_MAX = 576;
/** At most one message per peer in this long (the sender's kernel remembers the first). */
const EVERY_MS = 100;

/** Tells local senders, at most once per peer per EVERY_MS, that their packet was too big for its path. */
export class TooBigNotices {
  sent = 0;
  private readonly last = new Map<string, number>();

  constructor(private readonly write: (message: Uint8Array) => void) {}

  /** `packet` (from the TUN, to `peer`) is larger than the `mtu` its path takes: say so if due. */
  notify(peer: string, packet: Uint8Array, mtu: number, now = performance.now()): boolean {
    if (now - (this.last.get(peer) ?? -Infinity) < EVERY_MS) return false;
    const msg = packetTooBig(packet, mtu);
    if (!msg) return false;
    this.last.set(peer, now);
    this.sent++;
    this.write(msg);
    return true;
  }
}

function sum16(b: Uint8Array, start: number, end: number, acc = 0): number {
  for (let i = start; i + 1 < end; i += 2) acc += (b[i] << 8) | b[i + 1];
  if ((end - start) & 1) acc += b[end - 1] << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
  return ~acc & 0xffff;
}

/**
 * The ICMP message telling the sender of `packet` (as read from the TUN) that at most `mtu` bytes fit,
 * or undefined when none is due: an IPv4 packet without DF (it may be cut, and the overlay carries it
 * whole anyway), an IPv6 path below the 1280-byte minimum, or a packet that fits.
 */
export function packetTooBig(packet: Uint8Array, mtu: number): Uint8Array | undefined {
  if (packet.length <= mtu) return undefined;
  const v = packet[0] >> 4;
  if (v === 4) return tooBig4(packet, mtu);
  if (v === 6) return tooBig6(packet, mtu);
  return undefined;
}

function tooBig4(p: Uint8Array, mtu: number): Uint8Array | undefined {
  if (p.length < 20 || (p[6] & 0x40) === 0 || mtu < IPV4_MIN_MTU) return undefined; // no DF, or no sane size
  const ihl = (p[0] & 0x0f) * 4;
  if (p[9] === 1 && p.length > ihl && p[ihl] !== 0 && p[ihl] !== 8) return undefined; // never about an ICMP error
  const quoted = Math.min(p.length, IPV4_REPLY_MAX - 28);
  const out = new Uint8Array(28 + quoted);
  out[0] = 0x45;
  out[2] = out.length >> 8;
  out[3] = out.length & 0xff;
  out[8] = 64; // TTL
  out[9] = 1; // ICMP
  out.set(p.subarray(16, 20), 12); // from the packet's destination
  out.set(p.subarray(12, 16), 16); // to its source
  const h = fold(sum16(out, 0, 20));
  out[10] = h >> 8;
  out[11] = h & 0xff;
  out[20] = 3; // destination unreachable
  out[21] = 4; // fragmentation needed and DF set
  out[26] = (mtu >> 8) & 0xff;
  out[27] = mtu & 0xff;
  out.set(p.subarray(0, quoted), 28);
  const c = fold(sum16(out, 20, out.length));
  out[22] = c >> 8;
  out[23] = c & 0xff;
  return out;
}

function tooBig6(p: Uint8Array, mtu: number): Uint8Array | undefined {
  if (p.length < 40 || mtu < IPV6_MIN_MTU) return undefined;
  if (p[6] === 58 && p.length > 40 && p[40] < 128) return undefined; // never about an ICMPv6 error
  const quoted = Math.min(p.length, IPV6_MIN_MTU - 48);
  const out = new Uint8Array(48 + quoted);
  const len = 8 + quoted;
  out[0] = 0x60;
  out[4] = len >> 8;
  out[5] = len & 0xff;
  out[6] = 58; // ICMPv6
  out[7] = 64; // hop limit
  out.set(p.subarray(24, 40), 8); // from the packet's destination
  out.set(p.subarray(8, 24), 24); // to its source
  out[40] = 2; // packet too big
  out[44] = (mtu >>> 24) & 0xff;
  out[45] = (mtu >>> 16) & 0xff;
  out[46] = (mtu >>> 8) & 0xff;
  out[47] = mtu & 0xff;
  out.set(p.subarray(0, quoted), 48);
  // Checksum over the pseudo-header (source, destination, length, next header) and the message.
  let acc = sum16(out, 8, 40);
  acc += len + 58;
  acc = sum16(out, 40, out.length, acc);
  const c = fold(acc);
  out[42] = c >> 8;
  out[43] = c & 0xff;
  return out;
}
