// Forward-frame sources (issue 14, 3): a frame's claimed sender is only its previous hop's word. A
// hostile member behind a relay forges frames with fresh sources and a fake trace: nothing it says may
// create state, count as a delivery, draw a report or a link attempt, steer paths, or buy it more than
// its link's fair share of a relay.
import { describe, expect, test } from "bun:test";
import { build } from "../sim/routers.ts";
import { encodeForward, relayed, TYPE_DATA, TYPE_REPORT } from "./frame.ts";
import type { NodeId } from "../identity/identity.ts";

const fake = (i: number) => (0xf000_0000 + i).toString(16).padStart(32, "0") as NodeId;

function net(opts: { relayBps?: number } = {}) {
  const n = build({ relays: ["R"], edges: ["A", "B", "M"], links: [["A", "R"], ["B", "R"], ["M", "R"]], seeds: { A: ["R"], B: ["R"], M: ["R"] }, sealed: true, relayBps: opts.relayBps });
  n.run(2000);
  return n;
}

/** What M (linked to R) puts on its link: a frame for `dst` claiming `src`, with M on its trace. */
function forged(n: ReturnType<typeof net>, dst: string, src: NodeId, inner: Uint8Array): Uint8Array {
  return relayed(encodeForward(n.id(dst), src, inner), n.id("M"), true);
}
const data = (size = 100) => Uint8Array.from({ length: size }, (_, i) => (i === 0 ? TYPE_DATA : 7));

describe("forged forward-frame sources", () => {
  test("fresh forged sources for us: no state, no delivery counted, no report, no link attempt", () => {
    const n = net();
    const B = n.r.B;
    const sends = () => B.stats.noPath + B.stats.sentDirect + B.stats.sentRelayed;
    const before = sends();
    for (let i = 0; i < 2000; i++) n.r.R.receive(n.id("M"), forged(n, "B", fake(i), data()));
    n.run(3000); // report rounds pass
    expect(sends()).toBe(before); // no report to, no lookup of, no link attempt to any forged source
    for (const i of [0, 999, 1999]) expect(B.traceFrom(fake(i))).toEqual([]);
    expect(B.isActive(fake(0))).toBe(false);
  });

  test("a forged unsealed delivery report about B's traffic is dropped", () => {
    const n = net();
    n.stream("B", "A", 1000);
    const report = Uint8Array.of(TYPE_REPORT, 1, ...new Uint8Array(16), 0, 0x10, 0, 0); // "all arrived direct"
    const dropped = n.r.B.stats.droppedMalformed;
    for (let i = 0; i < 50; i++) n.r.R.receive(n.id("M"), forged(n, "B", n.id("A"), report));
    n.run(200);
    expect(n.r.B.stats.droppedMalformed).toBe(dropped + 50);
  });

  test("relay fairness is per link: rotating forged sources buys M no more than one source would", () => {
    const cap = 8_000_000;
    const oneSrc = net({ relayBps: cap });
    const rotating = net({ relayBps: cap });
    const frame = data(1200);
    for (let i = 0; i < 2000; i++) {
      oneSrc.r.R.receive(oneSrc.id("M"), forged(oneSrc, "B", fake(1), frame));
      rotating.r.R.receive(rotating.id("M"), forged(rotating, "B", fake(i), frame));
    }
    const a = oneSrc.r.R.stats.forwarded, b = rotating.r.R.stats.forwarded;
    expect(b).toBeLessThanOrEqual(a + 5);
    expect(b).toBeLessThan(500); // 2000 before: every rotated source had a fresh share
  });
});
