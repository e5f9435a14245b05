// Collections run during a burst of set-ups, and stop once none has started for a while; a single
// set-up (an edge's new link) starts none.
import { expect, test } from "bun:test";
import { burstGc, burstGcRunning, resetBurstGc, setupStarted } from "./burstgc.ts";

test("collections run during a burst of set-ups, not for a lone one, and stop after the last", async () => {
  const saved = { ...burstGc };
  let collections = 0;
  Object.assign(burstGc, { everyMs: 20, minSetups: 3, windowMs: 150, collect: () => collections++ });
  resetBurstGc();
  try {
    setupStarted();
    setupStarted();
    expect(burstGcRunning()).toBe(false); // two: no burst
    await Bun.sleep(200);
    setupStarted();
    expect(burstGcRunning()).toBe(false); // three, but not within the window
    setupStarted();
    setupStarted();
    expect(burstGcRunning()).toBe(true);
    for (let i = 0; i < 5; i++) {
      await Bun.sleep(50);
      setupStarted(); // set-ups keep coming: collections go on
    }
    expect(burstGcRunning()).toBe(true);
    await Bun.sleep(400);
    expect(burstGcRunning()).toBe(false);
    const ran = collections;
    expect(ran).toBeGreaterThanOrEqual(8);
    await Bun.sleep(100);
    expect(collections).toBe(ran); // idle: none
  } finally {
    Object.assign(burstGc, saved);
  }
});

test("a slow collection spaces the next ones out", async () => {
  const saved = { ...burstGc };
  const at: number[] = [];
  Object.assign(burstGc, { everyMs: 10, minSetups: 1, windowMs: 1_000, spacing: 5, collect: () => (at.push(performance.now()), Bun.sleepSync(20)) });
  resetBurstGc();
  try {
    setupStarted();
    await Bun.sleep(400);
    // Each takes 20 ms: the next waits 100 ms, not 10.
    expect(at.length).toBeGreaterThanOrEqual(2);
    expect(at.length).toBeLessThanOrEqual(4);
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(110);
  } finally {
    Object.assign(burstGc, saved);
    resetBurstGc();
  }
});
