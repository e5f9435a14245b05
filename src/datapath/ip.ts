// IP header peeking for the data path: version, source and destination, without copying.
import { formatIpv4, formatIpv6, inPrefix } from "../identity/address.ts";

export const IPV4_MIN_HEADER = 20;
export const IPV6_HEADER = 40;

/** 4, 6, or 0 for anything that is not a plausible IP packet. */
export function ipVersion(p: Uint8Array): 4 | 6 | 0 {
  if (p.length === 0) return 0;
  const v = p[0] >> 4;
  if (v === 4 && p.length >= IPV4_MIN_HEADER) return 4;
  if (v === 6 && p.length >= IPV6_HEADER) return 6;
  return 0;
}

/** Offset of the source address in a packet of the given version. */
export const srcOffset = (v: 4 | 6) => (v === 4 ? 12 : 8);
/** Offset of the destination address in a packet of the given version. */
export const dstOffset = (v: 4 | 6) => (v === 4 ? 16 : 24);

/** Whether the address at `p[off]` lies in `prefix` bits of `net` (src/identity/address.ts: the route layer uses it too). */
export { inPrefix };

/** The IPv4 address at `off` as a 32-bit unsigned number (map key without allocation). */
export function ipv4Key(p: Uint8Array, off: number): number {
  return ((p[off] << 24) | (p[off + 1] << 16) | (p[off + 2] << 8) | p[off + 3]) >>> 0;
}

export function ipv4KeyOf(b: Uint8Array): number {
  return ipv4Key(b, 0);
}

/** Human form of a packet's addresses, for logs. */
export function describe(p: Uint8Array): string {
  const v = ipVersion(p);
  if (v === 4) return `${formatIpv4(p, 12)} → ${formatIpv4(p, 16)} proto ${p[9]}`;
  if (v === 6) return `${formatIpv6(p.subarray(8, 24))} → ${formatIpv6(p.subarray(24, 40))} next ${p[6]}`;
  return `non-IP (${p.length} bytes)`;
}
