import { describe, expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { FairShare } from "./fairness.ts";

const A = "a".repeat(32) as NodeId, B = "b".repeat(32) as NodeId, C = "c".repeat(32) as NodeId;
const CAP_BPS = 8_000_000; // 1 MB/s for all sources together

/** Each ms for `ms` of simulated time, offer each source's bytes (0 = silent); return what got through. */
function run(f: FairShare, clock: { t: number }, offers: Record<string, number>, ms: number): Record<string, number> {
  const got: Record<string, number> = Object.fromEntries(Object.keys(offers).map((k) => [k, 0]));
  for (let i = 0; i < ms; i++) {
    clock.t++;
    for (const [src, bytes] of Object.entries(offers)) if (bytes && f.allow(src as NodeId, bytes)) got[src] += bytes;
  }
  return got;
}

const perSecond = (bytes: number, ms: number) => bytes / (ms / 1000);

describe("FairShare", () => {
  test("no cap: everything passes, nothing is tracked", () => {
    const f = new FairShare(0, () => 0);
    for (let i = 0; i < 1000; i++) expect(f.allow(i % 2 ? A : B, 65_000)).toBe(true);
    expect(f.sources).toBe(0);
  });

  test("one source alone gets about the cap, whatever it offers above it", () => {
    const clock = { t: 0 };
    const f = new FairShare(CAP_BPS, () => clock.t);
    const got = run(f, clock, { [A]: 1500 }, 10_000); // offers 1.5 MB/s for 10 s
    expect(perSecond(got[A], 10_000)).toBeGreaterThan(0.9e6);
    expect(perSecond(got[A], 10_000)).toBeLessThan(1.1e6);
    const f2 = new FairShare(CAP_BPS, () => clock.t);
    const flood = run(f2, clock, { [A]: 15_000 }, 10_000); // offers 15 MB/s
    expect(perSecond(flood[A], 10_000)).toBeGreaterThan(0.9e6);
    expect(perSecond(flood[A], 10_000)).toBeLessThan(1.1e6);
  });

  test("two heavy sources each get about half", () => {
    const clock = { t: 0 };
    const f = new FairShare(CAP_BPS, () => clock.t);
    const got = run(f, clock, { [A]: 1500, [B]: 1500 }, 10_000);
    for (const s of [A, B]) {
      expect(perSecond(got[s], 10_000)).toBeGreaterThan(0.4e6);
      expect(perSecond(got[s], 10_000)).toBeLessThan(0.6e6);
    }
    expect(f.sources).toBe(2);
  });

  test("a heavy source cannot starve a light one", () => {
    const clock = { t: 0 };
    const f = new FairShare(CAP_BPS, () => clock.t);
    // A floods at 15 MB/s; B sends 1500 bytes every 15 ms (100 kB/s, well under half the cap).
    let light = 0, offered = 0, heavy = 0;
    for (let i = 0; i < 10_000; i++) {
      clock.t++;
      for (let k = 0; k < 10; k++) if (f.allow(A, 1500)) heavy += 1500;
      if (i % 15 === 0) {
        offered += 1500;
        if (f.allow(B, 1500)) light += 1500;
      }
    }
    expect(light / offered).toBeGreaterThan(0.95);
    // A is held to its share of the cap, not more.
    expect(perSecond(heavy, 10_000)).toBeLessThan(0.6e6);
  });

  test("three sources: about a third each; when two fall silent the last one gets the whole cap back", () => {
    const clock = { t: 0 };
    const f = new FairShare(CAP_BPS, () => clock.t);
    const three = run(f, clock, { [A]: 1500, [B]: 1500, [C]: 1500 }, 6_000);
    for (const s of [A, B, C]) {
      expect(perSecond(three[s], 6_000)).toBeGreaterThan(0.28e6);
      expect(perSecond(three[s], 6_000)).toBeLessThan(0.4e6);
    }
    // B and C stop; after they age out (a few seconds), A alone is back at about the cap.
    run(f, clock, { [A]: 1500 }, 4_000);
    const alone = run(f, clock, { [A]: 1500 }, 5_000);
    expect(perSecond(alone[A], 5_000)).toBeGreaterThan(0.9e6);
    expect(f.sources).toBe(1);
  });
});
