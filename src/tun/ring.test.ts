// The packet ring: order and bytes kept across many wrap-arounds, a full ring refuses, the push time rides along.
import { describe, expect, test } from "bun:test";
import { ringBuffer, RingReader, RingWriter, sharedNow } from "./ring.ts";

function drainAll(reader: RingReader, sab: SharedArrayBuffer, max = 64): { bytes: Uint8Array; at: number }[] {
  const data = new Uint8Array(sab, RingReader.dataOffset);
  const out: { bytes: Uint8Array; at: number }[] = [];
  reader.drain((off, len, at) => out.push({ bytes: data.slice(off, off + len), at }), max, 0);
  return out;
}

describe("packet ring", () => {
  test("packets of random sizes come out whole and in order across many wrap-arounds", () => {
    const sab = ringBuffer(8 * 1024);
    const w = new RingWriter(sab), r = new RingReader(sab);
    let next = 0, expected = 0, seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const make = (n: number) => {
      const p = new Uint8Array(1 + Math.floor(rand() * 1500));
      p.fill(n & 0xff);
      p[0] = n & 0xff;
      return p;
    };
    let pushed = make(next);
    for (let round = 0; round < 2_000; round++) {
      // Push until full (or a handful), then drain some.
      for (let k = 0; k < 1 + Math.floor(rand() * 6); k++) {
        if (!w.push(pushed)) break;
        pushed = make(++next);
      }
      for (const { bytes } of drainAll(r, sab, 1 + Math.floor(rand() * 5))) {
        expect(bytes[0]).toBe(expected & 0xff);
        expect(bytes.every((b) => b === (expected & 0xff))).toBe(true);
        expected++;
      }
    }
    for (const { bytes } of drainAll(r, sab, 1_000)) {
      expect(bytes[0]).toBe(expected & 0xff);
      expected++;
    }
    expect(expected).toBe(next);
    expect(next).toBeGreaterThan(1_000); // the 8 KB ring wrapped hundreds of times
  });

  test("a full ring refuses a packet instead of overwriting", () => {
    const sab = ringBuffer(4 * 1024);
    const w = new RingWriter(sab), r = new RingReader(sab);
    let n = 0;
    while (w.push(new Uint8Array(1000).fill(n))) n++;
    expect(n).toBe(4); // four 1012-byte records fit in 4 KB; a fifth would overwrite the first
    const out = drainAll(r, sab);
    expect(out.map((o) => o.bytes[0])).toEqual([0, 1, 2, 3]);
    expect(w.push(new Uint8Array(1000))).toBe(true);
  });

  test("empty() only once the reader is done with every packet (a packet written beside the ring keeps its order)", () => {
    const sab = ringBuffer(4 * 1024);
    const w = new RingWriter(sab), r = new RingReader(sab);
    expect(w.empty()).toBe(true);
    w.push(new Uint8Array([1]));
    w.push(new Uint8Array([2]));
    expect(w.empty()).toBe(false);
    const seen: boolean[] = [];
    r.drain(() => seen.push(w.empty()), 64, 0, () => seen.push(w.empty()));
    expect(seen).toEqual([false, false, false]); // while taking the packets and writing them: not empty
    expect(w.empty()).toBe(true);
    w.push(new Uint8Array([3]));
    r.drain(() => {}, 1, 0);
    expect(w.empty()).toBe(true);
  });

  test("each packet carries the time it was pushed", () => {
    const sab = ringBuffer(4 * 1024);
    const w = new RingWriter(sab), r = new RingReader(sab);
    const before = sharedNow();
    w.push(new Uint8Array([1, 2, 3]));
    const [p] = drainAll(r, sab);
    expect(p.at).toBeGreaterThanOrEqual(before);
    expect(p.at).toBeLessThanOrEqual(sharedNow());
    expect([...p.bytes]).toEqual([1, 2, 3]);
  });
});
