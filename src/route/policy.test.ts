import { describe, expect, test } from "bun:test";
import { rng } from "../sim/clock.ts";
import { DiscountedUcb, reward } from "./policy.ts";

/** Run the bandit on arms with the given mean rewards (noisy), observing only the chosen arm. */
function play(b: DiscountedUcb, means: (t: number) => number[], rounds: number, from = 0, seed = 1): string[] {
  const random = rng(seed);
  const arms = means(0).map((_, i) => `arm${i}`);
  const picks: string[] = [];
  for (let t = from; t < from + rounds; t++) {
    const arm = b.choose(arms)!;
    picks.push(arm);
    const m = means(t)[arms.indexOf(arm)];
    b.update({ [arm]: Math.min(1, Math.max(0, m + (random() - 0.5) * 0.2)) });
  }
  return picks;
}
const share = (picks: string[], arm: string) => picks.filter((p) => p === arm).length / picks.length;

describe("discounted UCB", () => {
  test("converges to the best arm", () => {
    const b = new DiscountedUcb();
    const picks = play(b, () => [0.3, 0.5, 0.7], 400);
    expect(share(picks.slice(-100), "arm2")).toBeGreaterThan(0.8);
  });

  test("recovers after the best arm changes", () => {
    const b = new DiscountedUcb();
    play(b, () => [0.3, 0.5, 0.7], 300);
    // arm0 becomes the best; within 60 rounds the policy has moved and stays.
    const after = play(b, () => [0.8, 0.5, 0.2], 160, 300, 2);
    expect(share(after.slice(60), "arm0")).toBeGreaterThan(0.75);
  });

  test("without discounting it stays on the old best much longer (why the discount is there)", () => {
    const slow = new DiscountedUcb({ gamma: 0.9999 });
    play(slow, () => [0.3, 0.5, 0.7], 300);
    const after = play(slow, () => [0.8, 0.5, 0.2], 160, 300, 2);
    const fast = new DiscountedUcb();
    play(fast, () => [0.3, 0.5, 0.7], 300);
    const afterFast = play(fast, () => [0.8, 0.5, 0.2], 160, 300, 2);
    expect(share(afterFast.slice(0, 60), "arm0")).toBeGreaterThan(share(after.slice(0, 60), "arm0"));
  });

  test("hysteresis: two near-equal arms do not make it flap", () => {
    const b = new DiscountedUcb();
    const picks = play(b, () => [0.6, 0.61], 400);
    let switches = 0;
    for (let i = 1; i < picks.length; i++) if (picks[i] !== picks[i - 1]) switches++;
    expect(switches).toBeLessThan(40);
  });

  test("a dead arm (no longer a candidate) is left at once; no candidates, no choice", () => {
    const b = new DiscountedUcb();
    play(b, () => [0.2, 0.9], 50);
    expect(b.choose(["arm0"])).toBe("arm0");
    expect(b.choose([])).toBeUndefined();
  });

  test("indices: unplayed arms first, then mean + bonus", () => {
    const b = new DiscountedUcb();
    b.update({ a: 1 });
    const [a, z] = b.indices(["a", "z"]);
    expect(z.index).toBe(Infinity);
    expect(a.mean).toBe(1);
    expect(a.index).toBeGreaterThanOrEqual(a.mean);
  });
});

describe("reward", () => {
  test("better on every axis is a higher reward; weights choose what matters", () => {
    const good = { rttMs: 10, loss: 0, goodputBps: 100e6 };
    expect(reward(good)).toBeGreaterThan(reward({ ...good, rttMs: 100 }));
    expect(reward(good)).toBeGreaterThan(reward({ ...good, loss: 0.3 }));
    expect(reward(good)).toBeGreaterThan(reward({ ...good, goodputBps: 1e6 }));
    const nearSlow = { rttMs: 10, loss: 0, goodputBps: 5e6 }, farFast = { rttMs: 60, loss: 0, goodputBps: 200e6 };
    expect(reward(nearSlow, { latency: 1, loss: 0, goodput: 0 })).toBeGreaterThan(reward(farFast, { latency: 1, loss: 0, goodput: 0 }));
    expect(reward(farFast, { latency: 0, loss: 0, goodput: 1 })).toBeGreaterThan(reward(nearSlow, { latency: 0, loss: 0, goodput: 1 }));
    for (const m of [good, { rttMs: 1e6, loss: 1, goodputBps: 0 }]) {
      expect(reward(m)).toBeGreaterThanOrEqual(0);
      expect(reward(m)).toBeLessThanOrEqual(1);
    }
  });
});
