// Subnets in certificates and invite grants: their encoding and whether one lies inside another.
//
//   each subnet: family (1: 4 or 6) | prefix length (1) | address (4 or 16)
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from "../identity/address.ts";
import { TrustError } from "./errors.ts";

export interface Subnet {
  family: 4 | 6;
  address: string;
  prefix: number;
}

export const MAX_SUBNETS = 32;

/** The exit right (`trellis sign/invite --exit`): default routes, so an invite's bound and the certificate format need nothing new. */
export const EXIT_GRANT: Subnet[] = [
  { family: 4, address: "0.0.0.0", prefix: 0 },
  { family: 6, address: "::", prefix: 0 },
];

export function subnetBytes(s: Subnet): Uint8Array {
  const a = s.family === 4 ? parseIpv4(s.address) : s.family === 6 ? parseIpv6(s.address) : null;
  if (!a || !Number.isInteger(s.prefix) || s.prefix < 0 || s.prefix > a.length * 8) throw new TrustError("malformed", `subnet ${s.address}/${s.prefix} is not valid`);
  return a;
}

/** count (1) | each subnet. */
export function encodeSubnets(list: Subnet[], out: number[]): void {
  if (list.length > MAX_SUBNETS) throw new TrustError("malformed", `at most ${MAX_SUBNETS} subnets`);
  out.push(list.length);
  for (const s of list) out.push(s.family, s.prefix, ...subnetBytes(s));
}

/** Read count | subnets through `need`, which returns the next n bytes or throws. */
export function decodeSubnets(need: (n: number) => Uint8Array): Subnet[] {
  const subnets: Subnet[] = [];
  for (let n = need(1)[0]; n > 0; n--) {
    const [family, prefix] = need(2);
    if (family !== 4 && family !== 6) throw new TrustError("malformed", "subnet family must be 4 or 6");
    const a = need(family === 4 ? 4 : 16);
    subnets.push({ family, prefix, address: family === 4 ? formatIpv4(a) : formatIpv6(a) });
  }
  return subnets;
}

/** Whether every address of `inner` lies in `outer` (same family, at least as long a prefix, same leading bits). */
export function subnetWithin(inner: Subnet, outer: Subnet): boolean {
  if (inner.family !== outer.family || inner.prefix < outer.prefix) return false;
  const a = subnetBytes(inner), b = subnetBytes(outer);
  let bits = outer.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[i] & mask) !== (b[i] & mask)) return false;
  }
  return true;
}

/** Parse "10.1.0.0/24,fd00::/64" (CLI flags). */
export function parseSubnetList(text: string): Subnet[] {
  return text.split(",").filter(Boolean).map((s) => {
    const [address, len] = s.split("/");
    const sub = { family: (address.includes(":") ? 6 : 4) as 4 | 6, address, prefix: Number(len) };
    subnetBytes(sub);
    return sub;
  });
}
