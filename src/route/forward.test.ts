// Relay forwarding (./forward.ts) on small networks of in-memory links with a simulated clock.
import { describe, expect, test } from "bun:test";
import { build, relayVia } from "../sim/routers.ts";
import { encodeForward, relayed, TYPE_DATA } from "./frame.ts";

describe("forward: relaying for others", () => {
  test("A → R → B: delivered with A as the source; the path is the relay", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { A: ["R"], B: ["R"] } });
    n.run(2000);
    expect(n.pathUps.A).toContain("R");
    expect(n.r.A.hasRelayPath(n.id("B"))).toBe(true);
    n.stream("A", "B", 1000); // 20 packets
    expect(n.got.B.length).toBeGreaterThanOrEqual(19);
    expect(n.got.B.every((g) => g.src === "A")).toBe(true);
    expect(n.got.A).toEqual([]);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R"));
    expect(n.r.A.stats.sentRelayed).toBe(20);
    expect(n.r.A.stats.sentDirect).toBe(0);
    expect(n.r.R.stats.forwarded).toBeGreaterThanOrEqual(n.got.B.length);
    expect(n.r.B.traceFrom(n.id("A"))).toEqual([n.id("R")]);
  });

  test("with no relay and no link there is no path: send says so", () => {
    const n = build({ relays: [], edges: ["A", "B"], links: [], seeds: {} });
    n.run(1000);
    expect(n.send("A", "B")).toBe(false);
    expect(n.r.A.stats.noPath).toBe(1);
    expect(n.r.A.pathTo(n.id("B"))).toBeNull();
  });

  test("a node that is not a relay forwards nothing", () => {
    const n = build({ relays: [], edges: ["A", "X", "B"], links: [["A", "X"], ["X", "B"]], seeds: {} });
    // A and B each talk to X directly, so X has live links to both.
    n.send("A", "X");
    n.send("B", "X");
    n.run(1000);
    expect(n.link("X", "A")?.state).toBe("open");
    expect(n.link("X", "B")?.state).toBe("open");
    n.r.X.receive(n.id("A"), encodeForward(n.id("B"), n.id("A"), Uint8Array.from([TYPE_DATA, 1])));
    n.run(100);
    expect(n.r.X.stats.droppedNotRelay).toBe(1);
    expect(n.r.X.stats.forwarded).toBe(0);
    expect(n.got.B).toEqual([]);
  });

  test("a chain A → R1 → R2 → B (each reaches only its neighbours) delivers; B sees the trace [R1, R2]", () => {
    const n = build({ relays: ["R1", "R2"], edges: ["A", "B"], links: [["A", "R1"], ["R1", "R2"], ["R2", "B"]], seeds: { A: ["R1"], B: ["R2"], R1: ["R2"], R2: ["R1"] } });
    n.run(3000);
    n.stream("A", "B", 1000);
    expect(n.got.B.length).toBeGreaterThanOrEqual(19);
    expect(n.got.B.every((g) => g.src === "A")).toBe(true);
    expect(n.r.B.traceFrom(n.id("A"))).toEqual([n.id("R1"), n.id("R2")]);
    expect(n.r.R1.stats.forwarded).toBeGreaterThanOrEqual(19);
    expect(n.r.R2.stats.forwarded).toBeGreaterThanOrEqual(19);
  });

  test("loops: a frame whose previous hop is not the link it came on, or that already passed us, is dropped", () => {
    const n = build({
      relays: ["R1", "R2"],
      edges: ["A", "B"],
      links: [["A", "R1"], ["B", "R1"], ["B", "R2"], ["R1", "R2"]],
      seeds: { A: ["R1"], B: ["R1", "R2"], R1: ["R2"], R2: ["R1"] },
    });
    n.run(2000);
    expect(n.link("R1", "B")?.state).toBe("open"); // R1 could hand each of these frames straight to B
    const inner = Uint8Array.from([TYPE_DATA, 9]);
    // B hands R1 a frame claiming to come from A (A's link is another one).
    n.r.R1.receive(n.id("B"), encodeForward(n.id("B"), n.id("A"), inner));
    // R2 hands R1 a frame that, by its trace, passed R1 already.
    n.r.R1.receive(n.id("R2"), relayed(relayed(encodeForward(n.id("B"), n.id("A"), inner), n.id("R1"), true), n.id("R2"), true));
    // R2 hands R1 a frame from R1 itself.
    n.r.R1.receive(n.id("R2"), relayed(encodeForward(n.id("B"), n.id("R1"), inner), n.id("R2"), true));
    n.run(100);
    expect(n.r.R1.stats.droppedLoop).toBe(3);
    expect(n.r.R1.stats.forwarded).toBe(0);
    expect(n.got.B).toEqual([]);
    // The same frame from its real source goes through.
    n.r.R1.receive(n.id("A"), encodeForward(n.id("B"), n.id("A"), inner));
    n.run(100);
    expect(n.got.B).toEqual([{ src: "A", seq: 9, bytes: 2 }]);
  });

  test("the hop limit: three relays in a row are fine, four are too many", () => {
    const three = build({
      relays: ["R1", "R2", "R3"],
      edges: ["A", "B"],
      links: [["A", "R1"], ["R1", "R2"], ["R2", "R3"], ["R3", "B"]],
      seeds: { A: ["R1"], B: ["R3"], R1: ["R2"], R2: ["R1", "R3"], R3: ["R2"] },
    });
    three.run(5000);
    three.stream("A", "B", 1000);
    expect(three.got.B.length).toBeGreaterThanOrEqual(19);
    expect(three.r.B.traceFrom(three.id("A"))).toEqual([three.id("R1"), three.id("R2"), three.id("R3")]);
    // A frame with no relay hops left is not passed to another relay, though that relay leads to B.
    expect(three.r.R2.nextHop(three.id("B"), 1)).toBe(three.id("R3"));
    expect(three.r.R2.nextHop(three.id("B"), 0)).toBeUndefined();
    const noRoute = three.r.R2.stats.droppedNoRoute, forwarded = three.r.R2.stats.forwarded, before = three.got.B.length;
    three.r.R2.receive(three.id("R1"), relayed(encodeForward(three.id("B"), three.id("A"), Uint8Array.from([TYPE_DATA, 1]), 1), three.id("R1"), true));
    three.run(100);
    expect(three.r.R2.stats.droppedNoRoute).toBe(noRoute + 1);
    expect(three.r.R2.stats.forwarded).toBe(forwarded);
    expect(three.got.B.length).toBe(before);

    const four = build({
      relays: ["R1", "R2", "R3", "R4"],
      edges: ["A", "B"],
      links: [["A", "R1"], ["R1", "R2"], ["R2", "R3"], ["R3", "R4"], ["R4", "B"]],
      seeds: { A: ["R1"], B: ["R4"], R1: ["R2"], R2: ["R1", "R3"], R3: ["R2", "R4"], R4: ["R3"] },
    });
    four.run(5000);
    // R1 knows the way (it would take one more relay hop than a frame may), so the drop is the limit's.
    expect(four.r.R1.nextHop(four.id("B"), 3)).toBe(four.id("R2"));
    expect(four.r.R1.nextHop(four.id("B"), 2)).toBeUndefined();
    four.stream("A", "B", 1000);
    expect(four.got.B).toEqual([]);
    expect(four.r.R1.stats.droppedNoRoute).toBeGreaterThan(0);
    expect(four.r.R1.stats.forwarded).toBe(0);
    // R1 said it has no route, and A has no other relay: A holds its packets rather than send them to be dropped.
    expect(four.r.A.stats.noPath).toBeGreaterThan(0);
    expect(four.r.A.stats.noPath + four.r.R1.stats.droppedNoRoute).toBeGreaterThanOrEqual(19);
  });

  test("a relay with no route says so (UNREACHABLE), and the sender uses another relay for that destination only", () => {
    // R1 is the faster relay for A but cannot reach B; R2 can. C hangs off R1 alone.
    const n = build({
      relays: ["R1", "R2"],
      edges: ["A", "B", "C"],
      links: [["A", "R1"], ["A", "R2"], ["B", "R2"], ["C", "R1"]],
      seeds: { A: ["R1", "R2"], B: ["R2"], C: ["R1"] },
      delayMs: (a, b) => (a === "R2" || b === "R2" ? 10 : 1),
    });
    n.run(3000);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R1")); // the cheaper relay, before it says anything
    for (let t = 0; t < 2000; t += 50) {
      n.send("A", "B");
      n.send("A", "C");
      n.run(50);
    }
    expect(n.r.R1.stats.droppedNoRoute).toBeGreaterThan(0);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R2"));
    expect(n.got.B.length).toBeGreaterThan(30); // of 40
    // R1 still carries A's traffic to C.
    expect(n.r.A.pathTo(n.id("C"))).toBe(relayVia(n, "R1"));
    expect(n.got.C.length).toBeGreaterThanOrEqual(39);
  });

  test("a relay with a bandwidth cap shares it: a flood from one source does not crowd out another", () => {
    const n = build({
      relays: ["R"],
      edges: ["A", "B", "C"],
      links: [["A", "R"], ["B", "R"], ["C", "R"]],
      seeds: { A: ["R"], B: ["R"], C: ["R"] },
      relayBps: 800_000, // 100 kB/s through R, 50 kB/s for each of two sources
    });
    n.run(2000);
    let offeredA = 0, sentC = 0;
    for (let t = 0; t < 3000; t += 50) {
      for (let k = 0; k < 20; k++) {
        n.send("A", "B", 1000); // 400 kB/s
        offeredA += 1000;
      }
      n.send("C", "B", 100); // 2 kB/s
      sentC++;
      n.run(50);
    }
    const fromA = n.got.B.filter((g) => g.src === "A").reduce((s, g) => s + g.bytes, 0);
    const fromC = n.got.B.filter((g) => g.src === "C").length;
    expect(n.r.R.stats.droppedFairness).toBeGreaterThan(0);
    expect(fromC).toBeGreaterThanOrEqual(sentC - 1);
    expect(fromA).toBeLessThan(0.25 * offeredA); // about 50 kB/s of 400 kB/s got through
    expect(fromA).toBeGreaterThan(0.05 * offeredA);
  });

  test("a batch of forward frames (one GRO read at the relay): each checked, charged and delivered as one frame would be", () => {
    const n = build({ relays: ["R"], edges: ["A", "B", "C"], links: [["A", "R"], ["B", "R"], ["C", "R"]], seeds: { A: ["R"], B: ["R"], C: ["R"] }, relayBps: 800_000 });
    n.run(2000);
    const frame = (src: string, seq: number, size = 100) => encodeForward(n.id("B"), n.id(src), Uint8Array.from([TYPE_DATA, seq, ...new Uint8Array(size - 2)]));
    n.r.R.receiveBatch(n.id("A"), [frame("A", 1), frame("A", 2), frame("A", 3)]);
    n.run(50);
    expect(n.got.B.map((g) => [g.src, g.seq])).toEqual([["A", 1], ["A", 2], ["A", 3]]);
    expect(n.r.B.traceFrom(n.id("A"))).toEqual([n.id("R")]);
    expect(n.r.R.stats.forwarded).toBe(3);
    // Frames claiming C's source on A's link: a loop or a forgery, every one of them dropped.
    n.r.R.receiveBatch(n.id("A"), [frame("C", 4), frame("C", 5)]);
    n.run(50);
    expect(n.r.R.stats.droppedLoop).toBe(2);
    expect(n.got.B.length).toBe(3);
    // The fair share is charged per frame: 100 kB/s for all, a quarter-second burst; a batch of 50 kB
    // from A gets A's share through, the rest dropped frame by frame.
    const before = n.got.B.length;
    n.r.R.receiveBatch(n.id("A"), Array.from({ length: 50 }, (_, i) => frame("A", 10 + i, 1000)));
    n.run(50);
    const through = n.got.B.length - before;
    expect(n.r.R.stats.droppedFairness).toBeGreaterThan(0);
    expect(through).toBeGreaterThan(0);
    expect(through + n.r.R.stats.droppedFairness).toBe(50);
    // A run whose first frame is over the share and the rest are not: the rest go on whole.
    n.run(50);
    const got = n.got.B.length, dropped = n.r.R.stats.droppedFairness;
    n.r.R.receiveBatch(n.id("A"), [frame("A", 90, 30000), frame("A", 91, 100), frame("A", 92, 120)]);
    n.run(50);
    expect(n.r.R.stats.droppedFairness).toBe(dropped + 1);
    expect(n.got.B.slice(got).map((g) => [g.seq, g.bytes])).toEqual([[91, 100], [92, 120]]);
  });
});
