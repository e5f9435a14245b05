// "Packet too big" messages: well-formed ICMP/ICMPv6 with valid checksums, only where one is due.
import { describe, expect, test } from "bun:test";
import { packetTooBig, TooBigNotices } from "./toobig.ts";

/** The one's-complement sum of 16-bit words; a message with a correct checksum sums to 0xffff. */
function onesSum(b: Uint8Array, start = 0, end = b.length, acc = 0): number {
  for (let i = start; i + 1 < end; i += 2) acc += (b[i] << 8) | b[i + 1];
  if ((end - start) & 1) acc += b[end - 1] << 8;
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
  return acc;
}

function ipv4(len: number, df: boolean, proto = 6): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x45;
  p[2] = len >> 8;
  p[3] = len & 0xff;
  if (df) p[6] = 0x40;
  p[8] = 64;
  p[9] = proto;
  p.set([100, 64, 0, 2], 12);
  p.set([100, 64, 0, 3], 16);
  for (let i = 20; i < len; i++) p[i] = i & 0xff;
  return p;
}

function ipv6(len: number, next = 6): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x60;
  p[4] = (len - 40) >> 8;
  p[5] = (len - 40) & 0xff;
  p[6] = next;
  p[7] = 64;
  for (let i = 8; i < 40; i++) p[i] = 0xfd + i;
  for (let i = 40; i < len; i++) p[i] = i & 0xff;
  return p;
}

describe("packet too big", () => {
  test("IPv4 with DF: ICMP 3/4 from the destination to the source, next-hop MTU, valid checksums", () => {
    const p = ipv4(1500, true);
    const m = packetTooBig(p, 1400)!;
    expect(m).toBeDefined();
    expect(m[0]).toBe(0x45);
    expect((m[2] << 8) | m[3]).toBe(m.length);
    expect(m.length).toBeLessThanOrEqual(576);
    expect(m[9]).toBe(1);
    expect([...m.subarray(12, 16)]).toEqual([100, 64, 0, 3]);
    expect([...m.subarray(16, 20)]).toEqual([100, 64, 0, 2]);
    expect(onesSum(m, 0, 20)).toBe(0xffff);
    expect([m[20], m[21]]).toEqual([3, 4]);
    expect((m[26] << 8) | m[27]).toBe(1400);
    expect(onesSum(m, 20)).toBe(0xffff);
    // The quoted original starts with its own header.
    expect([...m.subarray(28, 48)]).toEqual([...p.subarray(0, 20)]);
  });

  test("IPv4 without DF, a packet that fits, and ICMP errors get none", () => {
    expect(packetTooBig(ipv4(1500, false), 1400)).toBeUndefined();
    expect(packetTooBig(ipv4(1500, true), 40)).toBeUndefined();
    expect(packetTooBig(ipv4(1400, true), 1400)).toBeUndefined();
    const icmpError = ipv4(1500, true, 1);
    icmpError[20] = 3;
    expect(packetTooBig(icmpError, 1400)).toBeUndefined();
    const echo = ipv4(1500, true, 1);
    echo[20] = 8;
    expect(packetTooBig(echo, 1400)).toBeDefined();
  });

  test("IPv6: ICMPv6 type 2 with the MTU, at most 1280 bytes, pseudo-header checksum", () => {
    const p = ipv6(1500);
    const m = packetTooBig(p, 1400)!;
    expect(m.length).toBe(1280);
    expect(m[6]).toBe(58);
    expect((m[4] << 8) | m[5]).toBe(m.length - 40);
    expect([...m.subarray(8, 24)]).toEqual([...p.subarray(24, 40)]);
    expect([...m.subarray(24, 40)]).toEqual([...p.subarray(8, 24)]);
    expect(m[40]).toBe(2);
    expect(new DataView(m.buffer).getUint32(44)).toBe(1400);
    const pseudo = onesSum(m, 8, 40, (m.length - 40) + 58);
    expect(onesSum(m, 40, m.length, pseudo)).toBe(0xffff);
  });

  test("IPv6 below the 1280 minimum, or about an ICMPv6 error, gets none", () => {
    expect(packetTooBig(ipv6(1500), 1200)).toBeUndefined();
    const err = ipv6(1500, 58);
    err[40] = 1;
    expect(packetTooBig(err, 1400)).toBeUndefined();
  });

  test("notices: at most one per peer per 100 ms, none when no message is due", () => {
    const out: Uint8Array[] = [];
    const n = new TooBigNotices((m) => out.push(m));
    expect(n.notify("a", ipv4(1500, true), 1400, 0)).toBe(true);
    expect(n.notify("a", ipv4(1500, true), 1400, 50)).toBe(false);
    expect(n.notify("b", ipv4(1500, true), 1400, 50)).toBe(true);
    expect(n.notify("a", ipv4(1500, false), 1400, 200)).toBe(false);
    expect(n.notify("a", ipv4(1500, true), 1400, 200)).toBe(true);
    expect(out.length).toBe(3);
    expect(n.sent).toBe(3);
  });
});
