import { describe, expect, test } from "bun:test";
import { NODE_ID_BYTES, nodeIdBytes, type NodeId } from "../identity/identity.ts";
import {
  channelFor, decodeForward, encodeForward, encodeHop, FORWARD_HEADER, HOP_PROBE, HOP_PROBE_ACK, HOP_RECORD, HOP_UNREACHABLE, idBody, MAX_RELAYS, readId, readU32, relayed, TYPE_DATA, TYPE_FORWARD, TYPE_HOP, TYPE_SIGNAL, u32,
} from "./frame.ts";

const id = (n: number) => n.toString(16).padStart(32, "0") as NodeId;
const A = id(1), B = id(2), R1 = id(3), R2 = id(4), R3 = id(5);
const inner = Uint8Array.from([TYPE_DATA, 1, 2, 3, 4]);

describe("forward frames", () => {
  test("round trip: destination, source, hops, empty trace, inner", () => {
    const b = encodeForward(B, A, inner);
    expect(b.length).toBe(FORWARD_HEADER + inner.length);
    expect(b[0]).toBe(TYPE_FORWARD);
    expect(decodeForward(b)).toEqual({ hops: MAX_RELAYS - 1, dst: B, src: A, trace: [], inner });
    expect(decodeForward(encodeForward(B, A, inner, 0))!.hops).toBe(0);
  });

  test("a relay appends itself to the trace and spends a hop only toward another relay", () => {
    const f0 = encodeForward(B, A, inner);
    const copy = f0.slice();
    const f1 = relayed(f0, R1, true);
    expect(f0).toEqual(copy); // the input is not touched
    expect(f1.length).toBe(f0.length + NODE_ID_BYTES);
    const d1 = decodeForward(f1)!;
    expect(d1.trace).toEqual([R1]);
    expect(d1.hops).toBe(MAX_RELAYS - 2);
    expect(d1.inner).toEqual(inner);
    const d2 = decodeForward(relayed(f1, R2, false))!;
    expect(d2).toEqual({ hops: MAX_RELAYS - 2, dst: B, src: A, trace: [R1, R2], inner });
  });

  test("the most relays a frame may pass: MAX_RELAYS in the trace, hops spent to 0", () => {
    let f = encodeForward(B, A, inner);
    f = relayed(f, R1, true);
    f = relayed(f, R2, true);
    f = relayed(f, R3, false);
    expect(decodeForward(f)).toEqual({ hops: 0, dst: B, src: A, trace: [R1, R2, R3], inner });
    // One more relay is past the limit: such a frame is refused.
    expect(decodeForward(relayed(f, id(6), false))).toBeUndefined();
  });

  test("malformed frames decode to undefined", () => {
    const good = encodeForward(B, A, inner);
    expect(decodeForward(new Uint8Array(0))).toBeUndefined();
    expect(decodeForward(new Uint8Array(10))).toBeUndefined();
    expect(decodeForward(good.subarray(0, FORWARD_HEADER - 1))).toBeUndefined(); // header cut
    expect(decodeForward(encodeForward(B, A, new Uint8Array(0)))).toBeUndefined(); // empty inner
    const longTrace = good.slice();
    longTrace[2] = MAX_RELAYS + 1;
    expect(decodeForward(longTrace)).toBeUndefined();
    const manyHops = good.slice();
    manyHops[1] = MAX_RELAYS + 1;
    expect(decodeForward(manyHops)).toBeUndefined();
    const maxHops = good.slice();
    maxHops[1] = MAX_RELAYS - 1;
    expect(decodeForward(maxHops)?.hops).toBe(MAX_RELAYS - 1); // the limit itself is still a frame
    const overBudget = good.slice();
    overBudget[1] = MAX_RELAYS; // a sender asking for one relay-to-relay hop too many
    expect(decodeForward(overBudget)).toBeUndefined();
    // Claims one relay in the trace, but the bytes after the header are only 16: no inner is left.
    const traceOverrun = encodeForward(B, A, new Uint8Array(NODE_ID_BYTES).fill(7));
    traceOverrun[2] = 1;
    expect(decodeForward(traceOverrun)).toBeUndefined();
    const wrongType = good.slice();
    wrongType[0] = TYPE_DATA;
    expect(decodeForward(wrongType)).toBeUndefined();
  });
});

describe("hop frames", () => {
  test("layout: 0xC6, the kind, then the body", () => {
    const h = encodeHop(HOP_PROBE, u32(0xdeadbeef));
    expect([...h]).toEqual([TYPE_HOP, HOP_PROBE, 0xde, 0xad, 0xbe, 0xef]);
    expect(readU32(h.subarray(2))).toBe(0xdeadbeef);
    const u = encodeHop(HOP_UNREACHABLE, idBody(B));
    expect(u.length).toBe(2 + NODE_ID_BYTES);
    expect(u.subarray(2)).toEqual(nodeIdBytes(B));
    expect(readId(u.subarray(2))).toBe(B);
    expect([...encodeHop(HOP_PROBE, new Uint8Array(0))]).toEqual([TYPE_HOP, HOP_PROBE]);
  });

  test("bodies of the wrong size read as undefined", () => {
    expect(readU32(new Uint8Array(3))).toBeUndefined();
    expect(readU32(new Uint8Array(5))).toBeUndefined();
    expect(readId(new Uint8Array(NODE_ID_BYTES - 1))).toBeUndefined();
    expect(readId(new Uint8Array(NODE_ID_BYTES + 1))).toBeUndefined();
    expect(readU32(u32(2 ** 32 + 5))).toBe(5); // wraps like the probe counter
  });
});

describe("channelFor: the one place a frame's channel is decided", () => {
  test("sealed data rides the fast channel, alone or forwarded (after any trace); probes the packet channel; the rest control", () => {
    expect(channelFor(inner)).toBe("fast");
    expect(channelFor(encodeForward(B, A, inner))).toBe("fast");
    expect(channelFor(relayed(relayed(encodeForward(B, A, inner, 2), R1, true), R2, true))).toBe("fast");
    expect(channelFor(encodeForward(B, A, Uint8Array.from([TYPE_SIGNAL, 1])))).toBe("control");
    expect(channelFor(encodeForward(B, A, Uint8Array.from([0xc1, 1])))).toBe("control");
    expect(channelFor(encodeHop(HOP_PROBE, u32(1)))).toBe("probe");
    expect(channelFor(encodeHop(HOP_PROBE_ACK, u32(1)))).toBe("probe");
    expect(channelFor(encodeHop(HOP_RECORD, new Uint8Array(3)))).toBe("control");
    expect(channelFor(encodeHop(HOP_UNREACHABLE, idBody(B)))).toBe("control");
  });
});
