// Inbound (./inbound.ts): each frame from a link reaches the part whose job it is, and nothing else.
import { describe, expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { encodeForward, encodeHop, relayed, HOP_LOOKUP, HOP_MISS, HOP_PROBE, HOP_RECORD, HOP_UNREACHABLE, TYPE_DATA, TYPE_REPORT } from "./frame.ts";
import { Inbound, type InboundOptions } from "./inbound.ts";
import type { RouterStats } from "./router.ts";

const ME = "11111111111111111111111111111111" as NodeId;
const L = "22222222222222222222222222222222" as NodeId;
const S = "33333333333333333333333333333333" as NodeId;
const D = "44444444444444444444444444444444" as NodeId;

function setup(sealed: boolean) {
  const calls: string[] = [];
  const stats = { droppedMalformed: 0 } as RouterStats;
  const rec = (name: string) => (...args: unknown[]) => void calls.push(`${name} ${args.filter((a) => typeof a === "string").join(" ")}`.trim());
  const o: InboundOptions = {
    self: ME,
    health: { heard: rec("heard"), used: rec("used"), onProbe: rec("probe") } as unknown as InboundOptions["health"],
    discovery: { onRecord: rec("record"), answerLookup: rec("lookup"), answerMember: rec("member-lookup") } as unknown as InboundOptions["discovery"],
    forwarder: {
      forward: rec("forward"),
      forwardRun: (peer: NodeId, bs: Uint8Array[], f: { src: string }) => void calls.push(`forwardRun ${peer} ${f.src} ${bs.length}`),
      onUnreachable: rec("unreachable"),
    } as unknown as InboundOptions["forwarder"],
    steering: { report: rec("report"), delivered: rec("delivered") } as unknown as InboundOptions["steering"],
    stats,
    sealed,
    deliver: (src, _inner, link, via) => void calls.push(`deliver ${src} ${link} ${via ?? "-"}`),
    deliverBatch: (src, inners, link, via) => void calls.push(`deliverBatch ${src} ${inners.length}x${inners[0].length} ${link ?? "-"} ${via ?? "-"}`),
    onMember: rec("member"),
    traced: (src, trace) => void calls.push(`traced ${src} [${trace.join(",")}]`),
  };
  return { inbound: new Inbound(o), calls, stats };
}

const data = Uint8Array.of(TYPE_DATA, 0, 0, 0, 1, 2, 3);

describe("inbound: every frame to its job", () => {
  test("a direct data packet: delivered; with sealed reports it proves no life until its session opens it", () => {
    const { inbound, calls } = setup(true);
    inbound.receive(L, data);
    expect(calls).toEqual([`used ${L}`, `traced ${L} []`, `deliver ${L} ${L} -`]);
    calls.length = 0;
    inbound.opened(L, L, undefined, 3);
    expect(calls).toEqual([`heard ${L}`, `delivered ${L}`]);
  });

  test("a forward frame for us is delivered with its trace; one for another goes to the forwarder", () => {
    const { inbound, calls } = setup(true);
    inbound.receive(L, encodeForward(ME, S, data));
    expect(calls).toEqual([`heard ${L}`, `used ${L}`, `traced ${S} []`, `deliver ${S} ${L} -`]);
    calls.length = 0;
    inbound.receive(L, encodeForward(D, S, data));
    expect(calls).toEqual([`heard ${L}`, `used ${L}`, `forward ${L}`]);
  });

  test("hop frames: probes, records, lookups, unreachable each to their part; a miss is taken and dropped", () => {
    const { inbound, calls, stats } = setup(true);
    inbound.receive(L, encodeHop(HOP_PROBE, new Uint8Array(4)));
    inbound.receive(L, encodeHop(HOP_RECORD, new Uint8Array(8)));
    inbound.receive(L, encodeHop(HOP_LOOKUP, new Uint8Array(16)));
    inbound.receive(L, encodeHop(HOP_UNREACHABLE, new Uint8Array(16)));
    inbound.receive(L, encodeHop(HOP_MISS, new Uint8Array(16)));
    expect(calls.filter((c) => !c.startsWith("heard"))).toEqual([`probe ${L}`, `record ${L}`, `lookup ${L}`, `unreachable ${L}`]);
    expect(stats.droppedMalformed).toBe(0);
  });

  test("garbage and unsealed reports (with sealed reports on) are counted and go nowhere", () => {
    const { inbound, calls, stats } = setup(true);
    inbound.receive(L, encodeHop(99 as never, new Uint8Array(4)));
    inbound.receive(L, Uint8Array.of(0xc5, 1));
    inbound.receive(L, Uint8Array.of(TYPE_REPORT, 0));
    expect(stats.droppedMalformed).toBe(3);
    expect(calls.some((c) => c.startsWith("deliver") || c.startsWith("report"))).toBe(false);
    // Without sealed reports, a report is steering's.
    const open = setup(false);
    open.inbound.receive(L, Uint8Array.of(TYPE_REPORT, 0));
    expect(open.calls).toContain(`report ${L}`);
  });

  test("a batch of forward frames (one GRO read): runs that share their whole header go on together, split where any byte of it differs", () => {
    const { inbound, calls, stats } = setup(true);
    const toD = encodeForward(D, S, data);
    const toDFromOther = encodeForward(D, L, data); // another claimed source: its own run
    const ctl = encodeForward(D, S, Uint8Array.of(0xc7, 1, 2)); // another inner type: its own run
    const forUs = relayed(encodeForward(ME, S, data), L, false); // to us, through L
    inbound.receiveBatch(L, [toD, toD, toDFromOther, toD, ctl, Uint8Array.of(0xc5, 1), forUs, forUs, forUs]);
    expect(calls).toEqual([
      `heard ${L}`, `used ${L}`,
      `forwardRun ${L} ${S} 2`, `forwardRun ${L} ${L} 1`, `forwardRun ${L} ${S} 1`, `forwardRun ${L} ${S} 1`,
      `traced ${S} [${L}]`, `deliverBatch ${S} 3x${data.length} ${L} ${L}`,
    ]);
    expect(stats.droppedMalformed).toBe(1);
  });
});
