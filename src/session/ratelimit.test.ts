// Handshake token buckets alone: a rate per source, per link and for the whole node, refilled with time.
import { describe, expect, test } from "bun:test";
import { CheckBudget, TokenBuckets } from "./ratelimit.ts";

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

describe("CheckBudget: signature checks per source, per link and in all; over budget they wait", () => {
  test("a link that sends more than its rate gets its rate: the rest waits (latest per key) or is dropped past the cap", () => {
    let t = 0;
    const b = new CheckBudget({ perSource: 2, perLink: 5, overall: 10 }, () => t, { perLink: 4, overall: 100 });
    let ran = 0;
    const got: string[] = [];
    for (let i = 0; i < 100; i++) b.run("m", `s${i % 10}`, `k${i % 10}`, () => (ran++, got.push(`k${i % 10}`)));
    expect(ran).toBe(5); // the link's burst
    expect(b.pending).toBe(4); // k5..k8 wait (each replaced by its latest), k9 past the link's cap
    expect(b.stats.dropped).toBeGreaterThan(0);
    b.drain();
    expect(ran).toBe(5); // no tokens yet
    t += 1000;
    b.drain();
    expect(ran).toBe(9);
    expect(b.pending).toBe(0);
  });

  test("one source on a link gets its own rate; another link is not held up by it", () => {
    let t = 0;
    const b = new CheckBudget({ perSource: 2, perLink: 20, overall: 40 }, () => t);
    let m = 0, a = 0;
    for (let i = 0; i < 50; i++) b.run("m", "same", "same", () => m++);
    for (let i = 0; i < 15; i++) b.run("a", `s${i}`, `k${i}`, () => a++);
    expect(m).toBe(2);
    expect(a).toBe(15); // an honest burst of distinct sources on another link runs at once
    t += 1000;
    b.drain();
    expect(m).toBe(3); // only the latest of the 48 re-sent checks waited
  });

  test("the whole-node budget holds across links", () => {
    const t = 0;
    const b = new CheckBudget({ perSource: 5, perLink: 5, overall: 12 }, () => t);
    let ran = 0;
    for (let l = 0; l < 10; l++) for (let i = 0; i < 5; i++) b.run(`l${l}`, `s${i}`, `k${i}`, () => ran++);
    expect(ran).toBe(12);
  });
});
