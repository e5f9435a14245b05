// The replay window: in order, out of order within the window, too old, duplicates, big jumps.
import { expect, test } from "bun:test";
import { ReplayWindow, WINDOW_SIZE } from "./replay.ts";

test("the window is at least as wide as WireGuard's", () => {
  expect(WINDOW_SIZE).toBeGreaterThanOrEqual(8128);
});

test("in order, duplicates, out of order, too old", () => {
  const w = new ReplayWindow();
  for (let i = 0; i < 100; i++) expect(w.update(i)).toBe(true);
  expect(w.update(50)).toBe(false);
  expect(w.update(99)).toBe(false);
  expect(w.update(200)).toBe(true);
  expect(w.update(150)).toBe(true); // late but inside the window
  expect(w.update(150)).toBe(false);
  expect(w.update(200 + WINDOW_SIZE - 1)).toBe(true);
  expect(w.check(200)).toBe(false); // seen
  expect(w.check(201)).toBe(true); // inside, unseen
  expect(w.update(200 + WINDOW_SIZE + 5)).toBe(true);
  expect(w.check(201)).toBe(false); // now too old
  expect(w.check(205)).toBe(false);
  expect(w.check(210)).toBe(true);
});

test("a jump larger than the ring clears it", () => {
  const w = new ReplayWindow();
  for (let i = 0; i < 64; i++) w.update(i);
  w.update(1_000_000);
  for (let c = 1_000_000 - WINDOW_SIZE + 1; c < 1_000_000; c += 97) expect(w.check(c)).toBe(true);
  expect(w.check(1_000_000)).toBe(false);
});

test("matches a reference set for a random sequence", () => {
  const w = new ReplayWindow();
  const seen = new Set<number>();
  let max = -1;
  let x = 12345;
  for (let i = 0; i < 20000; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const c = Math.max(0, max + (x % 200) - 150 + (i % 50 === 0 ? (x % 9000) : 0));
    const expectNew = !seen.has(c) && (c > max || max - c < WINDOW_SIZE);
    expect(w.update(c)).toBe(expectNew);
    if (expectNew) {
      seen.add(c);
      max = Math.max(max, c);
    }
  }
});

test("counter 0 stays seen once the window moves past it", () => {
  const w = new ReplayWindow();
  expect(w.update(0)).toBe(true);
  expect(w.update(1)).toBe(true);
  expect(w.update(0)).toBe(false);
  expect(w.update(40)).toBe(true); // the next word
  expect(w.update(0)).toBe(false);
  expect(w.update(1)).toBe(false);
});
