// The task clock: one reading per task, a fresh one in the next.
import { expect, test } from "bun:test";
import { taskNow } from "./clock.ts";

test("taskNow holds within a task and moves in the next", async () => {
  const a = taskNow();
  const end = performance.now() + 3;
  while (performance.now() < end) {}
  expect(taskNow()).toBe(a);
  await Bun.sleep(2);
  const b = taskNow();
  expect(b).toBeGreaterThan(a);
  expect(Math.abs(b - (performance.timeOrigin + performance.now()))).toBeLessThan(50);
});

test("a microtask boundary is enough for a fresh reading", async () => {
  const a = taskNow();
  const end = performance.now() + 2;
  while (performance.now() < end) {}
  await Promise.resolve();
  await Promise.resolve();
  expect(taskNow()).toBeGreaterThan(a);
});
