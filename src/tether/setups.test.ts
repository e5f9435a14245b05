// Set-up pacing with a fake clock: jittered exponential backoff, and the gate's bound, line and stale drops.
import { expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { Retries, sample, SetupGate } from "./setups.ts";

const id = (i: number) => i.toString(16).padStart(32, "0") as NodeId;

test("retries back off exponentially with jitter, capped, and start over on reset", () => {
  let now = 0, r = 0.5;
  const retries = new Retries(1000, 15_000, () => now, () => r);
  const p = id(1);
  expect(retries.due(p)).toBe(true);
  const gaps: number[] = [];
  for (let i = 0; i < 7; i++) {
    retries.attempted(p);
    const from = now;
    while (!retries.due(p)) now += 10;
    gaps.push(now - from);
  }
  expect(gaps).toEqual([1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  // Jitter: two peers failing at the same moment come back at different times (±50 %).
  const a = id(2), b = id(3);
  r = 0;
  retries.attempted(a);
  r = 0.99;
  retries.attempted(b);
  now += 600;
  expect([retries.due(a), retries.due(b)]).toEqual([true, false]);
  retries.reset(b);
  expect(retries.due(b)).toBe(true);
  // A cap brings a long back-off down (a tethered peer tries UDP again every few seconds).
  for (let i = 0; i < 5; i++) retries.attempted(a);
  r = 0.5;
  retries.cap(a, 5000);
  now += 5000;
  expect(retries.due(a)).toBe(true);
});

test("the gate runs a bounded number of set-ups, queues one per peer in arrival order, drops stale ones", () => {
  let now = 0;
  const gate = new SetupGate({ running: 2, queued: 3, staleMs: 8000, slotMs: 60_000, now: () => now });
  const started: string[] = [];
  const start = (tag: string) => () => void started.push(tag);
  expect(gate.admit(id(1), start("1"))).toBe("started");
  expect(gate.admit(id(2), start("2"))).toBe("started");
  expect(gate.admit(id(3), start("3"))).toBe("queued");
  expect(gate.admit(id(4), start("4"))).toBe("queued");
  // The same peer again replaces its queued set-up in place (one per peer), and a running peer's new one takes its slot.
  expect(gate.admit(id(3), start("3b"))).toBe("queued");
  expect(gate.admit(id(1), start("1b"))).toBe("started");
  expect(gate.admit(id(5), start("5"))).toBe("queued");
  expect(gate.admit(id(6), start("6"))).toBe("refused"); // the line is full
  expect([gate.running, gate.queued]).toEqual([2, 3]);
  expect(started).toEqual(["1", "2", "1b"]);

  gate.done(id(1));
  expect(started.at(-1)).toBe("3b");
  gate.done(id(1)); // not running: nothing changes
  expect(gate.running).toBe(2);
  // A queued peer's running link ending does not drop its queued set-up.
  gate.done(id(4));
  expect(gate.isQueued(id(4))).toBe(true);

  now += 9000; // 4 and 5 waited too long: their offerers gave up
  gate.done(id(2));
  expect(started).toEqual(["1", "2", "1b", "3b"]);
  expect(gate.stats.stale).toBe(2);
  expect([gate.running, gate.queued]).toEqual([1, 0]);
  gate.cancel(id(3));
  expect(gate.running).toBe(0);
});

test("a set-up that neither opens nor closes gives up its slot after slotMs: the gate bounds the rate", () => {
  let now = 0;
  const gate = new SetupGate({ running: 1, queued: 8, staleMs: 8000, slotMs: 4000, now: () => now });
  const started: number[] = [];
  for (let i = 1; i <= 3; i++) gate.admit(id(i), () => void started.push(i));
  expect(started).toEqual([1]);
  now += 3999;
  gate.pump();
  expect(started).toEqual([1]);
  now += 1;
  gate.pump(); // what the gate's own timer does
  expect(started).toEqual([1, 2]);
  gate.done(id(1)); // ends late: its slot is already gone, nothing else starts
  expect(started).toEqual([1, 2]);
  gate.clear();
});

test("a burst of set-ups for one peer read together makes one set-up, the latest", () => {
  const later: (() => void)[] = [];
  const gate = new SetupGate({ running: 4, queued: 8, staleMs: 8000, slotMs: 4000, defer: (f) => void later.push(f) });
  const started: string[] = [];
  for (const tag of ["a", "b", "c"]) expect(gate.admit(id(1), () => void started.push(tag))).toBe("started");
  gate.admit(id(2), () => void started.push("other"));
  gate.admit(id(3), () => void started.push("cancelled"));
  gate.cancel(id(3));
  expect(started).toEqual([]);
  for (const f of later.splice(0)) f();
  expect(started).toEqual(["c", "other"]);
  gate.clear();
});

test("sample: up to k distinct items, each with its chance whatever its place", () => {
  const items = Array.from({ length: 10 }, (_, i) => i);
  expect(sample(items, 3).length).toBe(3);
  expect(new Set(sample(items, 10)).size).toBe(10);
  expect(sample(items, 20).length).toBe(10);
  expect(sample([], 3)).toEqual([]);
  const seen = new Array(10).fill(0);
  for (let r = 0; r < 2000; r++) for (const i of sample(items, 2)) seen[i]++;
  expect(Math.min(...seen)).toBeGreaterThan(250); // 400 each on average
});
