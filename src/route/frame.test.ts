import { describe, expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { decodeForward, encodeForward, encodeHop, FORWARD_HEADER, HOP_PROBE, MAX_RELAYS, readU32, relayed, TYPE_HOP, u32 } from "./frame.ts";

const id = (n: number) => n.toString(16).padStart(32, "0") as NodeId;
const A = id(1), B = id(2), R1 = id(3), R2 = id(4);
const inner = Uint8Array.from([0xc4, 1, 2, 3, 4]);

describe("forward frames", () => {
  test("round trip: destination, source, hops, empty trace, inner", () => {
    const f = decodeForward(encodeForward(B, A, inner))!;
    expect(f).toEqual({ hops: MAX_RELAYS - 1, dst: B, src: A, trace: [], inner });
  });

  test("a relay appends itself to the trace and spends a hop only toward another relay", () => {
    const f0 = encodeForward(B, A, inner);
    const f1 = relayed(f0, R1, true);
    const d1 = decodeForward(f1)!;
    expect(d1.trace).toEqual([R1]);
    expect(d1.hops).toBe(MAX_RELAYS - 2);
    expect(d1.inner).toEqual(inner);
    const d2 = decodeForward(relayed(f1, R2, false))!;
    expect(d2.trace).toEqual([R1, R2]);
    expect(d2.hops).toBe(MAX_RELAYS - 2);
    expect(d2.src).toBe(A);
    expect(d2.dst).toBe(B);
    expect(d2.inner).toEqual(inner);
  });

  test("malformed frames decode to undefined", () => {
    const good = encodeForward(B, A, inner);
    expect(decodeForward(good.subarray(0, FORWARD_HEADER))).toBeUndefined(); // no inner
    expect(decodeForward(new Uint8Array(10))).toBeUndefined();
    const longTrace = good.slice();
    longTrace[2] = MAX_RELAYS + 1;
    expect(decodeForward(longTrace)).toBeUndefined();
    const manyHops = good.slice();
    manyHops[1] = MAX_RELAYS + 1;
    expect(decodeForward(manyHops)).toBeUndefined();
    const traceOverrun = good.slice();
    traceOverrun[2] = 1; // claims one relay, but the 16 bytes are the inner and nothing is left
    expect(decodeForward(traceOverrun.subarray(0, FORWARD_HEADER + 16))).toBeUndefined();
    const wrongType = good.slice();
    wrongType[0] = 0xc4;
    expect(decodeForward(wrongType)).toBeUndefined();
  });
});

test("hop frames: type, kind, body", () => {
  const h = encodeHop(HOP_PROBE, u32(0xdeadbeef));
  expect(h[0]).toBe(TYPE_HOP);
  expect(h[1]).toBe(HOP_PROBE);
  expect(readU32(h.subarray(2))).toBe(0xdeadbeef);
  expect(readU32(new Uint8Array(3))).toBeUndefined();
});
