// The in-memory TUN double: injected batches reach the handler, writes are recorded, close stops both.
import { expect, test } from "bun:test";
import { createMemoryTun } from "./memory.ts";
import { BatchSlots } from "./batch.ts";

test("memory tun passes batches in and records writes", async () => {
  const tun = createMemoryTun();
  const got: Uint8Array[][] = [];
  tun.onPackets((b) => got.push(b));
  tun.inject([Uint8Array.of(1), Uint8Array.of(2)]);
  tun.writeOne(Uint8Array.of(9));
  expect(got).toEqual([[Uint8Array.of(1), Uint8Array.of(2)]]);
  expect(tun.written).toEqual([Uint8Array.of(9)]);
  await tun.close();
  tun.writeOne(Uint8Array.of(3));
  expect(tun.stats).toEqual({ rxPackets: 2, txPackets: 1, txDropped: 1 });
});

test("a batch slot holds what the reader read, as views without the header", () => {
  const slots = BatchSlots.make(2, 3, 8);
  const { bytes, lens } = slots.slot(1);
  bytes.set([0, 1, 2, 3], 0);
  bytes.set([0, 7, 7, 7, 7, 7, 7, 7], 16);
  lens.set([4, 1, 8]);
  slots.filled(1, 3, 1234.5);
  // The worker's view of the same memory sees the same batch.
  const there = new BatchSlots(slots.init);
  expect(there.packets(1, 1)).toEqual([Uint8Array.of(1, 2, 3), new Uint8Array(0), new Uint8Array(7).fill(7)]);
  expect(there.readTime(1)).toBe(1234.5);
  expect(slots.slot(0).bytes.every((b) => b === 0)).toBe(true);
});
