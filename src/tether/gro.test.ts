// UDP GRO on a real loopback socket: a GSO run arrives as one read, and segmentSize cuts it back into
// the datagrams sent, byte for byte; single datagrams and runs of mixed headers are never cut.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { segmentSize } from "./gro.ts";
import { udpGro } from "./sockopt.ts";
import { GsoSocket } from "./udpgso.ts";

/** A session data packet: type word, receiver index, counter, then `len - 16` random bytes. */
function data(idx: number, counter: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  b.set(randomBytes(len - 16), 16);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xc4, true);
  v.setUint32(4, idx, true);
  v.setBigUint64(8, BigInt(counter), true);
  return b;
}

function cut(b: Uint8Array): Uint8Array[] {
  const size = segmentSize(b);
  if (!size) return [b];
  const out: Uint8Array[] = [];
  for (let at = 0; at < b.length; at += size) out.push(b.subarray(at, Math.min(at + size, b.length)));
  return out;
}

const concat = (ds: Uint8Array[]) => Buffer.concat(ds);

describe("UDP GRO", () => {
  test("a GSO run arrives as one read and is cut back into its datagrams (IPv4 and IPv6)", async () => {
    for (const host of ["127.0.0.1", "::1"]) {
      const reads: Uint8Array[] = [];
      const rx = await Bun.udpSocket({ hostname: host, socket: { data: (_s, d) => void reads.push(new Uint8Array(d)) } });
      const tx = await Bun.udpSocket({ hostname: host });
      try {
        expect(udpGro((rx as unknown as { fd: number }).fd)).toBe(true);
        const ds = Array.from({ length: 30 }, (_, i) => data(7, i, i === 29 ? 100 : 1300));
        const gso = GsoSocket.open((tx as unknown as { fd: number }).fd)!;
        expect(gso.send(ds, 0, ds.length, 1300, host, rx.port)).toEqual({ sent: 30 });
        for (let i = 0; i < 50 && reads.flat().length === 0; i++) await Bun.sleep(10);
        await Bun.sleep(20);
        expect(reads.length).toBe(1); // coalesced
        expect(reads.flatMap(cut)).toEqual(ds);
      } finally {
        rx.close();
        tx.close();
      }
    }
  });

  test("single datagrams are never cut; two of one size are", () => {
    for (let i = 0; i < 2000; i++) expect(segmentSize(data(i, i, 64 + (i % 1400)))).toBe(0);
    const two = [data(3, 1, 90), data(3, 2, 90)];
    expect(cut(concat(two))).toEqual(two);
    const shortLast = [data(3, 1, 1400), data(3, 2, 1400), data(3, 3, 33)];
    expect(cut(concat(shortLast))).toEqual(shortLast);
    // Another session's packet mid-run (a NIC's GRO, not our sender, may put one there): cut right.
    const mixed = [data(3, 1, 200), data(4, 1, 200), data(3, 2, 200), data(4, 2, 120)];
    expect(cut(concat(mixed))).toEqual(mixed);
    // Forward frames: type, hops, trace length and destination repeat.
    const fwd = (n: number) => Uint8Array.from([0xc5, 3, 0, ...new Uint8Array(16).fill(9), ...randomBytes(16), ...randomBytes(n)]);
    const frames = [fwd(300), fwd(300), fwd(300)];
    expect(cut(concat(frames))).toEqual(frames);
    // Not ours (STUN, DTLS): never cut.
    expect(segmentSize(concat([Uint8Array.from([23, 254, 253, ...randomBytes(100)]), Uint8Array.from([23, 254, 253, ...randomBytes(100)])]))).toBe(0);
  });
});
