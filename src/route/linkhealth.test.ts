// Link health (./linkhealth.ts): probes, liveness and loss on in-memory links with a simulated clock.
import { describe, expect, test } from "bun:test";
import { build, relayVia } from "../sim/routers.ts";

describe("link health", () => {
  test("a link that falls silent is dead for paths; when it answers again it is up again", () => {
    let silent = false;
    const n = build({
      relays: ["R1", "R2"],
      edges: ["A", "B"],
      links: [["A", "R1"], ["A", "R2"], ["B", "R1"], ["B", "R2"]],
      seeds: { A: ["R1", "R2"], B: ["R1", "R2"] },
      delayMs: (a, b) => (a === "R2" || b === "R2" ? 20 : 1),
      loss: (a, b) => (silent && [a, b].sort().join() === "A,R1" ? 1 : 0),
    });
    n.run(3000);
    n.stream("A", "B", 500);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R1"));
    const upsBefore = n.pathUps.A.filter((p) => p === "R1").length;
    silent = true;
    n.run(1000);
    expect(n.r.A.linksReport().find((l) => l.peer === n.id("R1"))?.alive).toBe(false);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R2"));
    const before = n.got.B.length;
    n.stream("A", "B", 1000);
    expect(n.got.B.length - before).toBe(20); // all through R2
    silent = false;
    n.run(1000);
    expect(n.r.A.linksReport().find((l) => l.peer === n.id("R1"))?.alive).toBe(true);
    expect(n.pathUps.A.filter((p) => p === "R1").length).toBe(upsBefore + 1);
    n.stream("A", "B", 1000);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R1")); // still far cheaper than R2
    expect(n.link("A", "R1")?.state).toBe("open"); // silent for a second only: never closed
  });

  test("a direct link that loses many probes is measured so, left for a relay, and taken back when it heals", () => {
    let lossy = false;
    const n = build({
      relays: ["R"],
      edges: ["A", "B"],
      links: [["A", "R"], ["B", "R"], ["A", "B"]],
      seeds: { A: ["R"], B: ["R"] },
      loss: (a, b) => (lossy && [a, b].sort().join() === "A,B" ? 0.4 : 0),
    });
    n.run(2000);
    n.stream("A", "B", 2000);
    expect(n.r.A.pathTo(n.id("B"))).toBe("direct");
    lossy = true; // 40% each way: about 64% of probe round trips fail
    n.stream("A", "B", 10_000);
    const loss = n.r.A.linksReport().find((l) => l.peer === n.id("B"))!.loss;
    expect(loss).toBeGreaterThan(0.4);
    expect(loss).toBeLessThan(0.85);
    expect(n.r.A.linksReport().find((l) => l.peer === n.id("R"))!.loss).toBeLessThan(0.05);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R"));
    lossy = false;
    n.stream("A", "B", 5000);
    expect(n.r.A.linksReport().find((l) => l.peer === n.id("B"))!.loss).toBeLessThan(0.1);
    expect(n.r.A.pathTo(n.id("B"))).toBe("direct");
  });
});
