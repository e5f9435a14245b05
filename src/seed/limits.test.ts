// Per-source budgets: IPv6 sources grouped by /64, connection caps released on close, costly checks
// refilled over time, and one source's flood leaves the others' budgets alone.
import { expect, test } from "bun:test";
import { SourceLimits, sourceKey } from "./limits.ts";

test("a source is an IPv4 address or an IPv6 /64", () => {
  expect(sourceKey("198.18.0.7")).toBe("198.18.0.7");
  expect(sourceKey("::ffff:198.18.0.7")).toBe("198.18.0.7");
  expect(sourceKey("2001:db8:1:2::1")).toBe(sourceKey("2001:db8:1:2:ffff::9"));
  expect(sourceKey("2001:db8:1:2::1")).not.toBe(sourceKey("2001:db8:1:3::1"));
});

test("connections per source are capped and released", () => {
  const l = new SourceLimits(() => 0, { connections: 2, costlyPerS: 5, costlyBurst: 5, totalPerS: 100 });
  expect(l.connect("10.0.0.1")).toBe(true);
  expect(l.connect("10.0.0.1")).toBe(true);
  expect(l.connect("10.0.0.1")).toBe(false);
  expect(l.connect("10.0.0.2")).toBe(true);
  l.release("10.0.0.1");
  expect(l.connect("10.0.0.1")).toBe(true);
  expect(l.stats.refusedConnections).toBe(1);
});

test("costly checks: a burst, then the rate; another source is unaffected; the total caps everyone", () => {
  let now = 0;
  const l = new SourceLimits(() => now, { connections: 64, costlyPerS: 5, costlyBurst: 10, totalPerS: 30 });
  let ok = 0;
  for (let i = 0; i < 50; i++) ok += Number(l.costly("10.0.0.1"));
  expect(ok).toBe(10);
  expect(l.costly("10.0.0.2")).toBe(true);
  now += 1000;
  ok = 0;
  for (let i = 0; i < 50; i++) ok += Number(l.costly("10.0.0.1"));
  expect(ok).toBe(5);
  // Many sources at once stop at the overall budget.
  now += 1000;
  ok = 0;
  for (let i = 0; i < 100; i++) ok += Number(l.costly(`10.1.0.${i}`));
  expect(ok).toBeLessThanOrEqual(30);
});
