// Handshake fragmentation: reorder, duplicates, loss and time-out, garbage, bounded memory.
import { expect, test } from "bun:test";
import { fragment, FRAGMENT_HEADER, MAX_FRAGMENT, MAX_FRAGMENTS, Reassembler } from "./fragment.ts";

const message = crypto.getRandomValues(new Uint8Array(8853));

test("fragments are at most one datagram and reassemble in any order, with duplicates", () => {
  const fs = fragment(0xc1, message);
  expect(fs.length).toBe(8);
  for (const f of fs) expect(f.length).toBeLessThanOrEqual(MAX_FRAGMENT);
  const r = new Reassembler();
  const order = [3, 0, 7, 3, 1, 6, 2, 5, 0];
  for (const i of order) expect(r.add("x", "x", fs[i])).toBeUndefined();
  expect(r.add("x", "x", fs[4])).toEqual(message);
  expect(r.pending).toBe(0);
});

test("an incomplete message times out", () => {
  let t = 0;
  const r = new Reassembler(() => t);
  const fs = fragment(0xc1, message);
  for (const f of fs.slice(1)) r.add("x", "x", f);
  expect(r.pending).toBe(1);
  t += 6000;
  r.expire();
  expect(r.pending).toBe(0);
  expect(r.add("x", "x", fs[0])).toBeUndefined();
});

test("garbage and a flood of partial messages stay bounded", () => {
  const r = new Reassembler();
  for (let i = 0; i < 5000; i++) {
    const g = crypto.getRandomValues(new Uint8Array(1 + (i % 1300)));
    g[0] = 0xc1;
    r.add(`src${i % 50}`, `src${i % 50}`, g);
  }
  expect(r.pending).toBeLessThanOrEqual(128);
  const r2 = new Reassembler();
  for (let i = 0; i < 100; i++) r2.add("one", "one", fragment(0xc1, message)[0]);
  expect(r2.pending).toBeLessThanOrEqual(4);
});

test("a short middle fragment cannot stretch or shrink a message", () => {
  const r = new Reassembler();
  const fs = fragment(0xc1, message);
  const short = fs[2].subarray(0, 100);
  expect(r.add("x", "x", short)).toBeUndefined();
  expect(r.dropped).toBe(1);
});

// Attack (issue 14, 4): 64 junk first fragments every 5 s filled the one global table (64 partial
// messages) and every real handshake was dropped. Quotas now hold per link; junk evicts its own.
test("junk partial messages on one link never keep another link's handshake out", () => {
  const r = new Reassembler();
  const real = fragment(0xc1, message);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 500; i++) {
      const g = new Uint8Array(MAX_FRAGMENT).fill(7);
      g[0] = 0xc1;
      new DataView(g.buffer).setUint32(1, round * 1000 + i, true);
      g[5] = 0;
      g[6] = 24;
      r.add("hostile", `forged${i}`, g); // a fresh claimed source each time, all on one link
    }
    let whole: Uint8Array | undefined;
    for (const f of real) whole = r.add("honest", "honest", f) ?? whole;
    expect(whole).toEqual(message);
  }
  expect(r.pending).toBeLessThanOrEqual(16);
});

test("many hostile links: a new link's message still fits (the biggest link gives way)", () => {
  const r = new Reassembler();
  for (let l = 0; l < 40; l++)
    for (let i = 0; i < 20; i++) {
      const f = fragment(0xc1, message)[0];
      r.add(`hostile${l}`, `s${i}`, f);
    }
  expect(r.pending).toBeLessThanOrEqual(128);
  let whole: Uint8Array | undefined;
  for (const f of fragment(0xc1, message)) whole = r.add("honest", "honest", f) ?? whole;
  expect(whole).toEqual(message);
});

test("the limits hold at their exact ends: 24 fragments, 1200 bytes, the 5 s time-out", () => {
  const chunk = MAX_FRAGMENT - FRAGMENT_HEADER;
  expect(fragment(0xc1, new Uint8Array(MAX_FRAGMENTS * chunk)).length).toBe(MAX_FRAGMENTS);
  expect(() => fragment(0xc1, new Uint8Array(MAX_FRAGMENTS * chunk + 1))).toThrow(/more than 24 fragments/);
  const r = new Reassembler();
  // A single full-size fragment is a whole message; one byte more is not a fragment.
  const one = fragment(0xc1, new Uint8Array(chunk).fill(5))[0];
  expect(one.length).toBe(MAX_FRAGMENT);
  expect(r.add("x", "x", one)).toEqual(new Uint8Array(chunk).fill(5));
  expect(r.add("x", "x", Uint8Array.from([...one, 0]))).toBeUndefined();
  // A 24-fragment message reassembles; a fragment claiming 25 parts is dropped.
  const big = crypto.getRandomValues(new Uint8Array(MAX_FRAGMENTS * chunk));
  const fs = fragment(0xc1, big);
  let out: Uint8Array | undefined;
  for (const f of fs) out = r.add("x", "x", f) ?? out;
  expect(out).toEqual(big);
  const dropped = r.dropped;
  const t25 = Uint8Array.from(fs[0]);
  t25[6] = 25;
  expect(r.add("x", "x", t25)).toBeUndefined();
  expect(r.dropped).toBe(dropped + 1);
  // Time-out: still there at exactly 5 s, gone after.
  let t = 0;
  const timed = new Reassembler(() => t);
  const parts = fragment(0xc1, message);
  timed.add("x", "x", parts[0]);
  t = 5000;
  timed.expire();
  expect(timed.pending).toBe(1);
  t = 5001;
  timed.expire();
  expect(timed.pending).toBe(0);
});

test("a fragment of the same message id with another count or type is dropped, not mixed in", () => {
  const r = new Reassembler();
  const fs = fragment(0xc1, message);
  r.add("x", "x", fs[0]);
  const otherCount = Uint8Array.from(fs[1]);
  otherCount[6] = fs.length + 1;
  const before = r.dropped;
  expect(r.add("x", "x", otherCount)).toBeUndefined();
  expect(r.dropped).toBe(before + 1);
  // The genuine rest still completes it.
  let out: Uint8Array | undefined;
  for (const f of fs.slice(1)) out = r.add("x", "x", f) ?? out;
  expect(out).toEqual(message);
});
