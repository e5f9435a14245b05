// Router behaviour on small networks of in-memory links with a simulated clock (src/sim).
import { describe, expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { SimClock, rng } from "../sim/clock.ts";
import { Fabric } from "../sim/fabric.ts";
import { encodeForward, relayed } from "./frame.ts";
import type { DiscoveryRecord } from "./record.ts";
import { simRecordCrypto as cheapCrypto } from "../sim/crypto.ts";
import { Router } from "./router.ts";
import type { Decision } from "./steering.ts";

interface Spec {
  relays: string[];
  edges: string[];
  /** Pairs that can link (either order). */
  links: [string, string][];
  /** Relays each node is told of (as seeds would). */
  seeds: Record<string, string[]>;
  delayMs?: (a: string, b: string) => number;
  idleTimeoutMs?: number;
  /** Relay bandwidth cap in bits per second (0 = none). */
  relayBps?: number;
  /** Fraction of unreliable messages (packets, probes) lost on a→b. */
  loss?: (a: string, b: string) => number;
  /** Path-policy decisions, by node name. */
  onDecision?: Record<string, (d: Decision) => void>;
  /** The fast-channel MTU every link reports (none: any size goes). */
  fastMtu?: number;
}

function build(spec: Spec) {
  const clock = new SimClock();
  const names = [...spec.relays, ...spec.edges];
  const id = (name: string) => Buffer.from(name.padEnd(16, ".")).toString("hex") as NodeId;
  const nameOf = new Map(names.map((n) => [id(n), n]));
  const ok = new Set(spec.links.flatMap(([a, b]) => [`${a}|${b}`, `${b}|${a}`]));
  const fabric = new Fabric({
    clock,
    random: rng(7),
    canLink: (a, b) => ok.has(`${nameOf.get(a)}|${nameOf.get(b)}`),
    delayMs: (a, b) => spec.delayMs?.(nameOf.get(a)!, nameOf.get(b)!) ?? 2,
    loss: (a, b) => spec.loss?.(nameOf.get(a)!, nameOf.get(b)!) ?? 0,
    fastMtu: () => spec.fastMtu,
  });
  const got: Record<string, { src: string; seq: number; bytes: number }[]> = {};
  const records: Record<string, DiscoveryRecord[]> = {};
  const pathUps: Record<string, string[]> = {};
  const r: Record<string, Router> = {};
  for (const n of names) {
    got[n] = [];
    records[n] = [];
    pathUps[n] = [];
    r[n] = new Router({
      self: id(n),
      relay: { enabled: spec.relays.includes(n), bandwidthBps: spec.relayBps ?? 0 },
      links: fabric.port(id(n)),
      now: () => clock.now,
      crypto: cheapCrypto(id(n)),
      idleTimeoutMs: spec.idleTimeoutMs ?? 60_000,
      deliver: (src, inner) => {
        r[n].active(src);
        got[n].push({ src: nameOf.get(src)!, seq: inner[1], bytes: inner.length });
      },
      onRecord: (rec) => records[n].push(rec),
      onDecision: spec.onDecision?.[n],
      onPathUp: (peer) => pathUps[n].push(nameOf.get(peer)!),
    });
    fabric.add(id(n), r[n]);
    clock.every(100, () => fabric.isUp(id(n)) && r[n].tick());
  }
  for (const [n, list] of Object.entries(spec.seeds)) for (const s of list) r[n].addRelay(id(s));
  let seq = 0;
  /** One packet (an unreliable session packet, 0xC4) of `size` bytes; its second byte is a sequence number. */
  const send = (from: string, to: string, size = 4) => {
    r[from].active(id(to));
    const p = new Uint8Array(size);
    p[0] = 0xc4;
    p[1] = seq++ & 255;
    return r[from].send(id(to), p);
  };
  const run = (ms: number) => clock.runUntil(clock.now + ms);
  /** Send from → to every 50 ms for `ms`. */
  const stream = (from: string, to: string, ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      send(from, to);
      run(50);
    }
  };
  const link = (a: string, b: string) => fabric.port(id(a)).link(id(b));
  return { clock, fabric, r, id, got, records, pathUps, send, run, stream, link };
}

const relayVia = (n: { id(s: string): NodeId }, ...names: string[]) => names.map((s) => `relay:${n.id(s)}`).join(" ");

describe("router: forwarding", () => {
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
    n.r.X.receive(n.id("A"), encodeForward(n.id("B"), n.id("A"), Uint8Array.from([0xc4, 1])));
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
    const inner = Uint8Array.from([0xc4, 9]);
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
    three.r.R2.receive(three.id("R1"), relayed(encodeForward(three.id("B"), three.id("A"), Uint8Array.from([0xc4, 1]), 1), three.id("R1"), true));
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
});

describe("router: packet limit", () => {
  test("the fast channel's MTU on the path in use; on a relay path less the forward header and a full trace", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { A: ["R"], B: ["R"] }, fastMtu: 1472 });
    n.run(2000);
    n.stream("A", "B", 200);
    expect(n.r.A.pathTo(n.id("B"))).toBe(relayVia(n, "R"));
    expect(n.r.A.packetLimit(n.id("B"))).toBe(1472 - (3 + 2 * 16) - 3 * 16);
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

describe("router: records", () => {
  test("lookup: an edge gets another node's record from its relay, even when the relay is further than a tick away", () => {
    // 60 ms each way: the answer comes after the router's next tick (every 100 ms here, as in a node).
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { A: ["R"], B: ["R"] }, delayMs: () => 60 });
    n.run(4000);
    expect(n.r.R.record(n.id("B"))?.relays).toEqual([n.id("R")]);
    // Edges do not keep other edges' records unasked.
    expect(n.r.A.record(n.id("B"))).toBeUndefined();
    expect(n.records.A.some((r) => r.id === n.id("B"))).toBe(false);
    n.r.A.lookup(n.id("B"));
    n.run(500);
    const got = n.records.A.filter((r) => r.id === n.id("B"));
    expect(got.length).toBe(1);
    expect(got[0].relays).toEqual([n.id("R")]);
    expect(got[0].relay).toBe(false);
    // Asked again, the record it now holds is handed back at once.
    n.r.A.lookup(n.id("B"));
    expect(n.records.A.filter((r) => r.id === n.id("B")).length).toBe(2);
  });

  test("lookupAddress: the node-id bits of an overlay address find the record too; an unknown node finds nothing", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { A: ["R"], B: ["R"] } });
    n.run(3000);
    n.r.A.lookupAddress(Buffer.from(n.id("B"), "hex").subarray(0, 10));
    n.r.A.lookup("f".repeat(32) as NodeId);
    n.run(200);
    expect(n.records.A.filter((r) => !r.relay).map((r) => r.id)).toEqual([n.id("B")]);
  });

  test("gossip: relays learn each other's and their edges' records; edges learn relays beyond their seeds", () => {
    const n = build({
      relays: ["R1", "R2", "R3"],
      edges: ["A", "B"],
      links: [["A", "R1"], ["A", "R3"], ["B", "R2"], ["R1", "R2"], ["R2", "R3"], ["R1", "R3"]],
      seeds: { A: ["R1"], B: ["R2"], R1: ["R2"], R2: ["R3"], R3: ["R1"] },
    });
    n.run(5000);
    for (const relay of ["R1", "R2", "R3"]) {
      expect(n.r[relay].record(n.id("A"))?.relays.sort()).toEqual([n.id("R1"), n.id("R3")].sort());
      expect(n.r[relay].record(n.id("B"))?.relays).toEqual([n.id("R2")]);
    }
    // A was told of R1 only, learned R3 by gossip and attached to it (two relays wanted).
    expect(n.r.A.isRelay(n.id("R3"))).toBe(true);
    expect(n.link("A", "R3")?.state).toBe("open");
    expect(n.r.A.record(n.id("B"))).toBeUndefined();
  });
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
