// Sending and path selection (./router.ts) on small networks of in-memory links with a simulated clock (src/sim).
import { describe, expect, test } from "bun:test";
import { build, relayVia } from "../sim/routers.ts";
import type { Decision } from "./steering.ts";
import type { NodeId } from "../identity/identity.ts";
import { TYPE_DATA } from "../session/wire.ts";

describe("router: packet limit", () => {
  test("the fast channel's MTU on the path in use; on a relay path less the forward header, a full trace and the per-link tag", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { A: ["R"], B: ["R"] }, fastMtu: 1472 });
    n.run(2000);
    n.stream("A", "B", 200);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R"));
    expect(n.r.A.packetLimit(n.id("B"))).toBe(1472 - (3 + 2 * 16) - 3 * 16 - 24); // and the fast channel's per-link tag
    const d = build({ relays: [], edges: ["A", "B"], links: [["A", "B"]], seeds: {}, fastMtu: 1400 });
    d.fabric.port(d.id("A")).connect(d.id("B"));
    d.run(2000);
    expect(d.r.A.pathTo(d.id("B"))).toBe("direct");
    expect(d.r.A.packetLimit(d.id("B"))).toBe(1400);
  });

  test("no fast channel (any size goes) or no path: no limit", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { A: ["R"], B: ["R"] } });
    n.run(2000);
    n.stream("A", "B", 200);
    expect(n.r.A.packetLimit(n.id("B"))).toBeUndefined();
    expect(n.r.A.packetLimit(n.id("C"))).toBeUndefined();
  });
});

describe("router: sending batches", () => {
  // Router.sendBatch (runs of packets from the TUN) dropped a whole run when no path was live, where
  // send() still tries the link the peer has (its health in doubt, the path perhaps already back).
  test("with no live path, a run goes over the peer's link as single packets do", () => {
    let loss = 0;
    const n = build({ relays: [], edges: ["A", "B"], links: [["A", "B"]], seeds: {}, loss: () => loss });
    n.fabric.port(n.id("A")).connect(n.id("B"));
    n.run(2000);
    n.stream("A", "B", 500);
    expect(n.r.A.pathTo(n.id("B"))).toBe("direct");
    loss = 1; // until A gives the direct path up
    for (let i = 0; i < 40 && n.r.A.hasPath(n.id("B")); i++) n.stream("A", "B", 250);
    expect(n.r.A.hasPath(n.id("B"))).toBe(false);
    expect(n.link("A", "B")?.state).toBe("open");
    loss = 0; // back, before A has probed it again
    const packet = (seq: number) => Uint8Array.of(TYPE_DATA, seq, 0, 0);
    const arrived = (f: () => void) => {
      const before = n.got.B.length;
      f();
      n.run(20);
      return n.got.B.slice(before).map((g) => g.seq);
    };
    expect(arrived(() => n.r.A.sendBatch(n.id("B"), [packet(201), packet(202), packet(203)]))).toEqual([201, 202, 203]);
    expect(arrived(() => [211, 212].forEach((s) => n.r.A.send(n.id("B"), packet(s))))).toEqual([211, 212]);
  });
});

describe("router: paths over time", () => {
  test("when the relay in use dies, traffic moves to the other one and keeps arriving", () => {
    const n = build({ relays: ["R1", "R2"], edges: ["A", "B"], links: [["A", "R1"], ["A", "R2"], ["B", "R1"], ["B", "R2"], ["R1", "R2"]], seeds: { A: ["R1", "R2"], B: ["R1", "R2"] } });
    n.run(2000);
    n.stream("A", "B", 1000);
    const used = n.r.A.pathTo(n.id("B"))!.replace("relay:", "") as NodeId;
    expect([n.id("R1"), n.id("R2")]).toContain(used);
    const other = used === n.id("R1") ? "R2" : "R1";
    n.fabric.kill(used);
    const before = n.got.B.length;
    n.stream("A", "B", 3000); // 60 packets
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, other));
    expect(n.got.B.length - before).toBeGreaterThan(40); // only those sent before A notices (~0.6 s) are lost
    // The last second got through whole.
    const lateStart = n.got.B.length;
    n.stream("A", "B", 1000);
    expect(n.got.B.length - lateStart).toBeGreaterThanOrEqual(19);
    expect(n.r.B.traceFrom(n.id("A"))).toEqual([n.id(other)]);
  });

  test("hysteresis: the relay in use stays while a little worse than another, and is left when clearly worse", () => {
    const oneWay: Record<string, number> = { R1: 5, R2: 10 };
    const n = build({
      relays: ["R1", "R2"],
      edges: ["A", "B"],
      links: [["A", "R1"], ["A", "R2"], ["B", "R1"], ["B", "R2"]],
      seeds: { A: ["R1", "R2"], B: ["R1", "R2"] },
      delayMs: (a, b) => (a === "A" || b === "A" ? oneWay[a === "A" ? b : a] : 2),
    });
    n.run(3000);
    n.stream("A", "B", 1000);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R1"));
    // R1 becomes a little slower than R2 (RTT 21 vs 20 ms): within 20% + 2 ms, A stays on it.
    oneWay.R1 = 10.5;
    n.stream("A", "B", 4000);
    const costs = Object.fromEntries(n.r.A.report(n.id("B")).map((c) => [c.name, c.cost]));
    expect(costs[relayVia(n, "R1")]).toBeGreaterThan(costs[relayVia(n, "R2")]); // R1 really is the worse one now
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R1"));
    // R1 becomes clearly slower (RTT 60 ms): A moves to R2.
    oneWay.R1 = 30;
    n.stream("A", "B", 4000);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R2"));
    expect(n.got.B.length).toBeGreaterThanOrEqual(175); // of 180: no packet lost on either decision
  });

  test("traffic moves to a direct link once it opens (first packets went by relay)", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"], ["A", "B"]], seeds: { A: ["R"], B: ["R"] } });
    n.run(2000);
    expect(n.link("A", "B")).toBeUndefined(); // nobody asked for it yet
    expect(n.send("A", "B")).toBe(true);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R"));
    n.stream("A", "B", 2000);
    expect(n.r.A.pathTo(n.id("B"))).toBe("direct");
    expect(n.r.A.stats.sentRelayed).toBeGreaterThan(0);
    expect(n.r.A.stats.sentDirect).toBeGreaterThan(0);
    expect(n.r.B.traceFrom(n.id("A"))).toEqual([]); // the last packets came direct
    expect(n.got.B.length).toBeGreaterThanOrEqual(40); // 41 sent, none lost on the switch
  });

  test("with no live path, an open direct link judged dead still carries what is sent (the keepalive confirming a handshake): only the TUN's packets wait", () => {
    let muted = false;
    const n = build({ relays: [], edges: ["A", "B"], links: [["A", "B"]], seeds: {}, loss: (a, b) => (muted && a === "B" && b === "A" ? 1 : 0) });
    n.fabric.port(n.id("A")).connect(n.id("B"));
    n.run(2000);
    expect(n.r.A.pathTo(n.id("B"))).toBe("direct");
    // B busy (a handshake under load): its probe answers stop for a second; A judges the link dead.
    muted = true;
    n.stream("A", "B", 1000);
    expect(n.r.A.linksReport().find((l) => l.peer === n.id("B"))?.alive).toBe(false);
    expect(n.r.A.hasPath(n.id("B"))).toBe(false);
    const before = n.got.B.length;
    expect(n.send("A", "B")).toBe(true);
    n.run(10);
    expect(n.got.B.length).toBe(before + 1);
  });

  test("an idle direct link closes after the idle timeout; links to relays stay, even ones with traffic of their own", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"], ["A", "B"]], seeds: { A: ["R"], B: ["R"] }, idleTimeoutMs: 3000 });
    n.run(2000);
    n.stream("A", "B", 2000);
    n.send("A", "R"); // A talks to R itself as well
    expect(n.r.A.pathTo(n.id("B"))).toBe("direct");
    const toR = n.link("A", "R"), bToR = n.link("B", "R");
    expect(toR?.state).toBe("open");
    n.run(2000); // idle for 2 s: not yet
    expect(n.link("A", "B")?.state).toBe("open");
    expect(n.r.A.isActive(n.id("B"))).toBe(true);
    n.run(3000); // idle for 5 s: closed, on both sides
    expect(n.r.A.isActive(n.id("B"))).toBe(false);
    expect(n.link("A", "B")).toBeUndefined();
    expect(n.link("B", "A")).toBeUndefined();
    // The very same relay links, never closed (and reopened) on the way.
    expect(n.link("A", "R")).toBe(toR);
    expect(n.link("B", "R")).toBe(bToR);
    expect(toR?.state).toBe("open");
    // Traffic again goes by relay at once (and asks for the direct link again).
    expect(n.send("A", "B")).toBe(true);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R"));
  });
});

describe("router: path policy", () => {
  test("the path policy picks the relay with the better measurements and logs each decision", () => {
    const decisions: Decision[] = [];
    const n = build({
      onDecision: { A: (d) => decisions.push(d) },
      relays: ["R1", "R2"],
      edges: ["A", "B"],
      links: [["A", "R1"], ["A", "R2"], ["B", "R1"], ["B", "R2"]],
      seeds: { A: ["R1", "R2"], B: ["R1", "R2"] },
      delayMs: (a, b) => (a === "R1" || b === "R1" ? 30 : 2),
    });
    n.run(3000);
    n.stream("A", "B", 6000);
    const report = n.r.A.policyReport(n.id("B"))!;
    expect(report.choice).toBe(`relay:${n.id("R2")}`);
    expect(n.r.A.pathTo(n.id("B"))).toBe(`relay:${n.id("R2")}`);
    expect(decisions.length).toBeGreaterThan(3);
    const last = decisions.at(-1)!;
    expect(last.candidates.map((c) => c.path).sort()).toEqual([`relay:${n.id("R1")}`, `relay:${n.id("R2")}`].sort());
    expect(last.choice).toBe(`relay:${n.id("R2")}`);
    expect(typeof last.reward).toBe("number");
  });
});
