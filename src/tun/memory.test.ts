// The in-memory TUN double: injected batches reach the handler, writes are recorded, close stops both.
import { expect, test } from "bun:test";
import { createMemoryTun } from "./memory.ts";
import { packBatch, unpackBatch } from "./batch.ts";

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

test("a worker batch round-trips through pack/unpack", () => {
  const stride = 8, buf = new Uint8Array(stride * 3), lens = new Int32Array([3, 0, 8]);
  buf.set([1, 2, 3], 0);
  buf.set([7, 7, 7, 7, 7, 7, 7, 7], 16);
  const out = unpackBatch(packBatch(buf, stride, lens, 3));
  expect(out).toEqual([Uint8Array.of(1, 2, 3), new Uint8Array(0), new Uint8Array(8).fill(7)]);
});
