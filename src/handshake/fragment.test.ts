// Handshake fragmentation: reorder, duplicates, loss and time-out, garbage, bounded memory.
import { expect, test } from "bun:test";
import { fragment, MAX_FRAGMENT, Reassembler } from "./fragment.ts";

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
