// Overlay addresses: the IPv6 address is derived from the node id inside one fixed ULA prefix.
//
// Prefix fd74:7265:6c6c::/48 ("trell" in ASCII after the fd ULA marker); the low 80 bits are the first
// 80 bits of the node id. An address thus names exactly one identity (up to an 80-bit hash collision);
// the full node id is checked in the session handshake. IPv4 comes from config (later: the certificate).
import type { NodeId } from "./identity.ts";

export const OVERLAY_PREFIX6 = "fd74:7265:6c6c::";
export const OVERLAY_PREFIX6_LEN = 48;
const PREFIX_BYTES = Uint8Array.from([0xfd, 0x74, 0x72, 0x65, 0x6c, 0x6c]);
/** Bytes of the node id that appear in the address (16 - 6). */
export const ADDRESS_ID_BYTES = 10;

/** The 16 bytes of a node's overlay IPv6 address. */
export function ipv6BytesOf(id: NodeId): Uint8Array {
  const out = new Uint8Array(16);
  out.set(PREFIX_BYTES, 0);
  out.set(Buffer.from(id, "hex").subarray(0, ADDRESS_ID_BYTES), 6);
  return out;
}

/** The node's overlay IPv6 address in canonical text form. */
export function ipv6Of(id: NodeId): string {
  return formatIpv6(ipv6BytesOf(id));
}

/** Whether the address at `p[off]` lies in `prefix` bits of `net` (either family). */
export function inPrefix(p: Uint8Array, off: number, net: Uint8Array, prefix: number): boolean {
  let bits = prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((p[off + i] & mask) !== (net[i] & mask)) return false;
  }
  return true;
}

/** Whether the 16 bytes at `addr[offset]` lie in the overlay prefix. */
export function inOverlayPrefix6(addr: Uint8Array, offset = 0): boolean {
  if (addr.length < offset + 16) return false;
  for (let i = 0; i < PREFIX_BYTES.length; i++) if (addr[offset + i] !== PREFIX_BYTES[i]) return false;
  return true;
}

/**
 * A map key for the overlay address at `addr[offset]`: the first 48 bits of the node id it holds, as
 * a number (no allocation on the packet path). Lookups confirm the whole address with equal16.
 */
export function addressKey6(addr: Uint8Array, offset = 0): number {
  let k = 0;
  for (let i = 6; i < 12; i++) k = k * 256 + addr[offset + i];
  return k;
}

/** Whether the 16 bytes at `a[offset]` equal `b`. */
export function equal16(a: Uint8Array, offset: number, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[offset + i] !== b[i]) return false;
  return true;
}

export function formatIpv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  // RFC 5952: compress the longest run (>= 2) of zero groups.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return groups.slice(0, best).join(":") + "::" + groups.slice(best + bestLen).join(":");
}

/** Parse an IPv6 address in text form to 16 bytes, or null. */
export function parseIpv6(s: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.split("::").length > 2) return null;
  const [head, tail] = s.includes("::") ? s.split("::") : [s, undefined];
  const parse = (part: string) => (part === "" ? [] : part.split(":"));
  const h = parse(head), t = tail === undefined ? [] : parse(tail);
  const total = h.length + t.length;
  if ((tail === undefined && total !== 8) || total > 8) return null;
  const groups = [...h, ...Array(8 - total).fill("0"), ...t];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i])) return null;
    const v = parseInt(groups[i], 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  return out;
}

/** Parse dotted-quad IPv4 to 4 bytes, or null. */
export function parseIpv4(s: string): Uint8Array | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return null;
  return Uint8Array.from(b);
}

export function formatIpv4(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}
