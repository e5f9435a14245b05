// Handshake token buckets: a rate per source and one for the whole node, refilled with time.
import { expect, test } from "bun:test";
import { TokenBuckets } from "./ratelimit.ts";

test("a source gets its rate and no more; another source its own; both refill with time", () => {
  const clock = { t: 1_000_000 };
  const b = new TokenBuckets(4, 20, () => clock.t);
  for (let i = 0; i < 4; i++) expect(b.take("x")).toBe(true);
  expect(b.take("x")).toBe(false);
  expect(b.take("y")).toBe(true);
  clock.t += 250; // a quarter second: one token for x
  expect(b.take("x")).toBe(true);
  expect(b.take("x")).toBe(false);
  clock.t += 10_000; // never more than one second's worth
  for (let i = 0; i < 4; i++) expect(b.take("x")).toBe(true);
  expect(b.take("x")).toBe(false);
});

test("the whole node has a rate too, however many sources there are", () => {
  const clock = { t: 1_000_000 };
  const b = new TokenBuckets(4, 20, () => clock.t);
  let ok = 0;
  for (let s = 0; s < 50; s++) if (b.take(`s${s}`)) ok++;
  expect(ok).toBe(20);
  expect(b.take("fresh")).toBe(false);
  clock.t += 1000;
  expect(b.take("fresh")).toBe(true);
});

test("many sources do not grow the table without bound", () => {
  const clock = { t: 1_000_000 };
  const b = new TokenBuckets(4, 1e9, () => clock.t);
  for (let s = 0; s < 10_000; s++) b.take(`s${s}`);
  expect((b as unknown as { buckets: Map<string, unknown> }).buckets.size).toBeLessThanOrEqual(4097);
});
