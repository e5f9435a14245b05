// TSO/USO reads (ffi/tun.c tun_split): a large segment from the kernel comes out as the packets the
// kernel's own GSO would have sent: headers, lengths, IDs, sequence numbers, flags and full checksums.
import { describe, expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { tunLib, VNET_HDR_LEN } from "./ffi.ts";

const lib = tunLib();
const STRIDE = 1500 + 64;

/** The Internet checksum of `b` seeded with `init` (0 when the data, checksum included, is right). */
function csum(b: Uint8Array, init = 0): number {
  let s = init;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}
const be16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const be32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** The pseudo-header's sum (unfolded) for the transport bytes of `p`. */
function pseudo(p: Uint8Array, ihl: number, proto: number): number {
  const v6 = p[0] >> 4 === 6;
  const addrs = v6 ? p.subarray(8, 40) : p.subarray(12, 20);
  let s = 0;
  for (let i = 0; i < addrs.length; i += 2) s += be16(addrs, i);
  return s + proto + (p.length - ihl);
}

/** A large TCP or UDP segment as the kernel hands it over with TSO/USO: vnet header, then the packet. */
function superPacket(v6: boolean, udp: boolean, payload: Uint8Array, gso: number, flags = 0x18): Uint8Array {
  const ihl = v6 ? 40 : 20, thl = udp ? 8 : 32; // TCP with 12 bytes of options (timestamps)
  const p = new Uint8Array(ihl + thl + payload.length);
  if (v6) {
    p[0] = 0x60;
    p[4] = (p.length - 40) >> 8;
    p[5] = (p.length - 40) & 0xff;
    p[6] = udp ? 17 : 6;
    p[7] = 64;
    p.set([0xfd, 0x74, 0x72, 0x65, 0x6c, 0x6c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 8);
    p.set([0xfd, 0x74, 0x72, 0x65, 0x6c, 0x6c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 24);
  } else {
    p.set([0x45, 0, p.length >> 8, p.length & 0xff, 0x12, 0x34, 0x40, 0, 64, udp ? 17 : 6, 0, 0, 10, 250, 0, 1, 10, 250, 0, 2]);
  }
  const t = p.subarray(ihl);
  t.set([0x9c, 0x40, 0x14, 0x51]); // ports 40000 → 5201
  if (udp) {
    t[4] = (8 + payload.length) >> 8;
    t[5] = (8 + payload.length) & 0xff;
  } else {
    t.set([0xfe, 0xdc, 0xba, 0x98, 0, 0, 0x10, 0], 4); // seq, ack
    t[12] = (thl / 4) << 4;
    t[13] = flags;
    t.set([1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8], 20);
  }
  t.set(payload, thl);
  // The kernel leaves the transport checksum partial: the pseudo-header's sum, folded, not complemented.
  let s = pseudo(p, ihl, udp ? 17 : 6);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  t[udp ? 6 : 16] = s >> 8;
  t[udp ? 7 : 17] = s & 0xff;
  const out = new Uint8Array(VNET_HDR_LEN + p.length);
  const h = new DataView(out.buffer);
  h.setUint8(0, 1); // NEEDS_CSUM
  h.setUint8(1, udp ? 5 : v6 ? 4 : 1);
  h.setUint16(2, ihl + thl, true);
  h.setUint16(4, gso, true);
  h.setUint16(6, ihl, true);
  h.setUint16(8, udp ? 6 : 16, true);
  out.set(p, VNET_HDR_LEN);
  return out;
}

/** Put `read` at the start of a slot buffer and cut it as tun_read_tso does; the packets it made. */
function split(read: Uint8Array, room = 128): { packets: Uint8Array[]; segs: number } {
  const buf = new Uint8Array(Math.max(STRIDE * room, read.length));
  buf.set(read);
  const lens = new Int32Array(room), segs = new Int32Array(2);
  const n = lib.tun_split!(ptr(buf), read.length, STRIDE, ptr(lens), room, ptr(segs));
  return { packets: Array.from({ length: n }, (_, k) => buf.slice(k * STRIDE + VNET_HDR_LEN, k * STRIDE + lens[k])), segs: segs[0] };
}

describe.skipIf(!lib.tun_split)("TSO/USO reads cut into packets (ffi/tun.c)", () => {
  const payload = Uint8Array.from({ length: 60_000 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
  for (const v6 of [false, true]) {
    test(`TCP over IPv${v6 ? 6 : 4}: gso_size pieces, sequence numbers, IDs, PSH on the last, checksums right`, () => {
      const gso = 1348;
      const { packets, segs } = split(superPacket(v6, false, payload, gso));
      const ihl = v6 ? 40 : 20, thl = 32;
      expect(segs).toBe(1);
      expect(packets.length).toBe(Math.ceil(payload.length / gso));
      const joined: number[] = [];
      packets.forEach((p, k) => {
        const plen = p.length - ihl - thl;
        expect(plen).toBe(k < packets.length - 1 ? gso : payload.length - gso * (packets.length - 1));
        if (v6) expect(be16(p, 4)).toBe(p.length - 40);
        else {
          expect(be16(p, 2)).toBe(p.length);
          expect(be16(p, 4)).toBe(0x1234 + k);
          expect(csum(p.subarray(0, 20))).toBe(0);
        }
        const t = p.subarray(ihl);
        expect(be32(t, 4)).toBe((0xfedcba98 + k * gso) >>> 0);
        expect(be32(t, 8)).toBe(0x00001000); // the ACK number, unchanged
        expect(t[13]).toBe(k === packets.length - 1 ? 0x18 : 0x10);
        expect(Array.from(t.subarray(20, 32))).toEqual([1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
        expect(csum(t, pseudo(p, ihl, 6))).toBe(0);
        joined.push(...t.subarray(thl));
      });
      expect(Uint8Array.from(joined)).toEqual(payload);
    });
  }

  test("UDP (USO): each piece a datagram with its own length and checksum", () => {
    const gso = 1200, data = payload.subarray(0, 10_000);
    const { packets } = split(superPacket(false, true, data, gso));
    expect(packets.length).toBe(Math.ceil(data.length / gso));
    const joined: number[] = [];
    for (const p of packets) {
      const u = p.subarray(20);
      expect(be16(u, 4)).toBe(u.length);
      expect(csum(u, pseudo(p, 20, 17))).toBe(0);
      joined.push(...u.subarray(8));
    }
    expect(Uint8Array.from(joined)).toEqual(data);
  });

  test("a plain packet with a partial checksum gets it completed; one without is left as it is", () => {
    const read = superPacket(false, false, payload.subarray(0, 1000), 1348);
    read[1] = 0; // GSO_NONE, NEEDS_CSUM still set
    const { packets, segs } = split(read);
    expect(segs).toBe(0);
    expect(packets.length).toBe(1);
    expect(csum(packets[0].subarray(20), pseudo(packets[0], 20, 6))).toBe(0);
    const plain = Uint8Array.from(read);
    plain[0] = 0;
    plain[VNET_HDR_LEN + 36] ^= 0xff; // a wrong checksum the kernel vouched for: not ours to fix
    expect(split(plain).packets[0]).toEqual(plain.subarray(VNET_HDR_LEN));
  });

  test("a segment whose pieces do not fit the slots left is dropped whole, never cut short", () => {
    expect(split(superPacket(false, false, payload, 1348), 20).packets.length).toBe(0);
    expect(split(superPacket(false, false, payload.subarray(0, 100), 1348), 1).packets.length).toBe(1);
  });
});
