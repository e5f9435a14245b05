// CoDel: no drops for short waits or short bursts; a standing queue gets drops, ever closer together.
import { describe, expect, test } from "bun:test";
import { Codel } from "./codel.ts";

/** Drop times (ms) for a packet leaving every `every` ms with the given wait, over `ms`. */
function run(c: Codel, sojourn: (t: number) => number, ms: number, every = 1): number[] {
  const drops: number[] = [];
  for (let t = 1; t <= ms; t += every) if (c.shouldDrop(sojourn(t), t)) drops.push(t);
  return drops;
}

describe("codel", () => {
  test("waits under the target never drop", () => {
    expect(run(new Codel(), () => 4.9, 5_000)).toEqual([]);
  });

  test("a burst above the target for less than an interval does not drop", () => {
    expect(run(new Codel(), (t) => (t >= 1_000 && t < 1_090 ? 30 : 1), 5_000)).toEqual([]);
  });

  test("a standing queue: the first drop after one interval, then closer and closer", () => {
    const drops = run(new Codel(), () => 20, 2_000);
    expect(drops[0]).toBeGreaterThanOrEqual(100);
    expect(drops[0]).toBeLessThanOrEqual(102);
    const gaps = drops.slice(1).map((d, i) => d - drops[i]);
    expect(gaps.length).toBeGreaterThan(5);
    expect(gaps[gaps.length - 1]).toBeLessThan(gaps[0]);
  });

  test("drops stop as soon as the wait falls below the target", () => {
    const c = new Codel();
    const drops = run(c, (t) => (t < 1_000 ? 20 : 2), 3_000);
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.every((d) => d < 1_000)).toBe(true);
  });
});
