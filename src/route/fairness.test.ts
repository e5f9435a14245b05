import { describe, expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { FairShare } from "./fairness.ts";

const A = "a".repeat(32) as NodeId, B = "b".repeat(32) as NodeId;

/** Offer `perTick` bytes from each source every ms for `ms`; return the bytes each got through. */
function run(f: FairShare, clock: { t: number }, offers: Record<string, number>, ms: number): Record<string, number> {
  const got: Record<string, number> = Object.fromEntries(Object.keys(offers).map((k) => [k, 0]));
  for (let i = 0; i < ms; i++) {
    clock.t++;
    for (const [src, bytes] of Object.entries(offers)) if (bytes && f.allow(src as NodeId, bytes)) got[src] += bytes;
  }
  return got;
}

describe("FairShare", () => {
  test("no cap: everything passes", () => {
    const f = new FairShare(0, () => 0);
    for (let i = 0; i < 1000; i++) expect(f.allow(A, 1500)).toBe(true);
  });

  test("one source alone gets about the cap", () => {
    const clock = { t: 0 };
    const f = new FairShare(8_000_000, () => clock.t); // 1 MB/s
    const got = run(f, clock, { [A]: 1500 }, 10_000); // offers 1.5 MB/s for 10 s
    expect(got[A] / 10).toBeGreaterThan(0.9e6);
    expect(got[A] / 10).toBeLessThan(1.1e6);
  });

  test("two heavy sources share it about evenly; a light one is not starved by a heavy one", () => {
    const clock = { t: 0 };
    const f = new FairShare(8_000_000, () => clock.t);
    const even = run(f, clock, { [A]: 1500, [B]: 1500 }, 10_000);
    expect(Math.abs(even[A] - even[B]) / (even[A] + even[B])).toBeLessThan(0.1);
    expect((even[A] + even[B]) / 10).toBeLessThan(1.1e6);
    // B now sends only 100 kB/s (well under half), A floods: B still gets all it offers.
    let light = 0, offered = 0;
    for (let i = 0; i < 10_000; i++) {
      clock.t++;
      f.allow(A, 1500);
      if (i % 15 === 0) {
        offered += 1500;
        if (f.allow(B, 1500)) light += 1500;
      }
    }
    expect(light / offered).toBeGreaterThan(0.95);
  });
});
