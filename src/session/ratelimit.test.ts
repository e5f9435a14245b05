// Handshake token buckets alone: a rate per source, per link and for the whole node, refilled with time.
import { expect, test } from "bun:test";
import { TokenBuckets } from "./ratelimit.ts";

test("a source gets its rate and no more; another source its own; both refill with time", () => {
  const clock = { t: 1_000_000 };
  const b = new TokenBuckets(4, 100, 100, () => clock.t);
  for (let i = 0; i < 4; i++) expect(b.take("L", "x")).toBe(true);
  expect(b.take("L", "x")).toBe(false);
  expect(b.take("L", "y")).toBe(true);
  clock.t += 250; // a quarter second: one token for x
  expect(b.take("L", "x")).toBe(true);
  expect(b.take("L", "x")).toBe(false);
  clock.t += 10_000; // never more than one second's worth
  for (let i = 0; i < 4; i++) expect(b.take("L", "x")).toBe(true);
  expect(b.take("L", "x")).toBe(false);
});

test("a link has a rate across all the sources it claims to carry; the whole node one across links", () => {
  const clock = { t: 1_000_000 };
  const b = new TokenBuckets(4, 10, 20, () => clock.t);
  let ok = 0;
  for (let s = 0; s < 50; s++) if (b.take("L1", `s${s}`)) ok++;
  expect(ok).toBe(10);
  for (let s = 0; s < 50; s++) if (b.take(`L${s + 2}`, "x")) ok++;
  expect(ok).toBe(20);
  expect(b.take("fresh-link", "fresh")).toBe(false);
  expect(b.underLoad()).toBe(true);
  clock.t += 1000;
  expect(b.underLoad()).toBe(false);
  expect(b.take("fresh-link", "fresh")).toBe(true);
});

test("a refusal charges nothing", () => {
  const clock = { t: 1_000_000 };
  const b = new TokenBuckets(1, 100, 100, () => clock.t);
  expect(b.take("L", "x")).toBe(true);
  for (let i = 0; i < 50; i++) expect(b.take("L", "x")).toBe(false);
  // The link and the node were not charged for the refusals: 99 more sources still get in.
  let ok = 0;
  for (let s = 0; s < 99; s++) if (b.take("L", `s${s}`)) ok++;
  expect(ok).toBe(99);
});
