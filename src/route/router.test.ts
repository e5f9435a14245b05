// Router behaviour on small networks of in-memory links with a simulated clock (src/sim).
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import type { NodeId } from "../identity/identity.ts";
import { SimClock, rng } from "../sim/clock.ts";
import { Fabric } from "../sim/fabric.ts";
import { encodeForward } from "./frame.ts";
import type { DiscoveryRecord, RecordCrypto } from "./record.ts";
import { Router } from "./router.ts";

const cheapCrypto = (id: NodeId): RecordCrypto => {
  const tag = (b: Uint8Array) => createHash("sha256").update(b).digest().subarray(0, 8);
  return {
    publicBytes: Buffer.from(id, "hex"),
    sign: tag,
    verify: (rid, pub, body, sig) => Buffer.from(pub).toString("hex") === rid && Buffer.from(tag(body)).equals(Buffer.from(sig)),
  };
};

interface Spec {
  relays: string[];
  edges: string[];
  /** Pairs that can link (either order). */
  links: [string, string][];
  /** Relays each node is told of (as seeds would). */
  seeds: Record<string, string[]>;
  delayMs?: (a: string, b: string) => number;
  idleTimeoutMs?: number;
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
  });
  const got: Record<string, { src: string; seq: number }[]> = {};
  const records: Record<string, DiscoveryRecord[]> = {};
  const r: Record<string, Router> = {};
  for (const n of names) {
    got[n] = [];
    records[n] = [];
    r[n] = new Router({
      self: id(n),
      relay: { enabled: spec.relays.includes(n), bandwidthBps: 0 },
      links: fabric.port(id(n)),
      now: () => clock.now,
      crypto: cheapCrypto(id(n)),
      idleTimeoutMs: spec.idleTimeoutMs ?? 60_000,
      deliver: (src, inner) => {
        r[n].active(src);
        got[n].push({ src: nameOf.get(src)!, seq: inner[1] });
      },
      onRecord: (rec) => records[n].push(rec),
    });
    fabric.add(id(n), r[n]);
    clock.every(100, () => fabric.isUp(id(n)) && r[n].tick());
  }
  for (const [n, list] of Object.entries(spec.seeds)) for (const s of list) r[n].addRelay(id(s));
  let seq = 0;
  const send = (from: string, to: string) => {
    r[from].active(id(to));
    return r[from].send(id(to), Uint8Array.from([0xc4, seq++ & 255, 0, 0]));
  };
  const run = (ms: number) => clock.runUntil(clock.now + ms);
  /** Send from → to every 50 ms for `ms`. */
  const stream = (from: string, to: string, ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      send(from, to);
      run(50);
    }
  };
  return { clock, fabric, r, id, got, records, send, run, stream };
}

describe("router", () => {
  test("A → R → B: delivered with A as the source; the path is the relay", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { A: ["R"], B: ["R"] } });
    n.run(2000);
    n.stream("A", "B", 1000);
    expect(n.got.B.length).toBeGreaterThan(15);
    expect(n.got.B.every((g) => g.src === "A")).toBe(true);
    expect(n.r.A.pathTo(n.id("B"))).toBe(`relay:${n.id("R")}`);
    expect(n.r.R.stats.forwarded).toBeGreaterThanOrEqual(n.got.B.length);
  });

  test("a chain A → R1 → R2 → B where each relay reaches only its neighbours; B sees the trace", () => {
    const n = build({ relays: ["R1", "R2"], edges: ["A", "B"], links: [["A", "R1"], ["R1", "R2"], ["R2", "B"]], seeds: { A: ["R1"], B: ["R2"], R1: ["R2"], R2: ["R1"] } });
    n.run(3000);
    n.stream("A", "B", 1000);
    expect(n.got.B.length).toBeGreaterThan(15);
    expect(n.r.B.traceFrom(n.id("A"))).toEqual([n.id("R1"), n.id("R2")]);
  });

  test("a node that is not a relay forwards nothing", () => {
    const n = build({ relays: [], edges: ["A", "X", "B"], links: [["A", "X"], ["X", "B"]], seeds: {} });
    n.r.A.active(n.id("X"));
    n.r.A.send(n.id("X"), Uint8Array.from([0xc4])); // asks for the link
    n.r.B.active(n.id("X"));
    n.r.B.send(n.id("X"), Uint8Array.from([0xc4]));
    n.run(1000);
    n.r.X.receive(n.id("A"), encodeForward(n.id("B"), n.id("A"), Uint8Array.from([0xc4, 1])));
    n.run(100);
    expect(n.r.X.stats.droppedNotRelay).toBe(1);
    expect(n.got.B).toEqual([]);
  });

  test("a frame whose previous hop is not the link it came on is dropped", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { A: ["R"], B: ["R"] } });
    n.run(2000);
    // B hands R a frame claiming to come from A.
    n.r.R.receive(n.id("B"), encodeForward(n.id("B"), n.id("A"), Uint8Array.from([0xc4, 9])));
    n.run(100);
    expect(n.r.R.stats.droppedLoop).toBe(1);
    expect(n.got.B).toEqual([]);
  });

  test("the hop limit: four relays in a row are too many", () => {
    const relays = ["R1", "R2", "R3", "R4"];
    const n = build({
      relays,
      edges: ["A", "B"],
      links: [["A", "R1"], ["R1", "R2"], ["R2", "R3"], ["R3", "R4"], ["R4", "B"]],
      seeds: { A: ["R1"], B: ["R4"], R1: ["R2"], R2: ["R1", "R3"], R3: ["R2", "R4"], R4: ["R3"] },
    });
    n.run(5000);
    n.stream("A", "B", 1000);
    expect(n.got.B).toEqual([]);
    expect(n.r.R1.stats.droppedNoRoute).toBeGreaterThan(0);
    // Three relays are fine: move B next to R3.
    const m = build({
      relays: ["R1", "R2", "R3"],
      edges: ["A", "B"],
      links: [["A", "R1"], ["R1", "R2"], ["R2", "R3"], ["R3", "B"]],
      seeds: { A: ["R1"], B: ["R3"], R1: ["R2"], R2: ["R1", "R3"], R3: ["R2"] },
    });
    m.run(5000);
    m.stream("A", "B", 1000);
    expect(m.got.B.length).toBeGreaterThan(15);
    expect(m.r.B.traceFrom(m.id("A"))).toEqual([m.id("R1"), m.id("R2"), m.id("R3")]);
  });

  test("when the relay in use dies, traffic moves to the other one and keeps arriving", () => {
    const n = build({ relays: ["R1", "R2"], edges: ["A", "B"], links: [["A", "R1"], ["A", "R2"], ["B", "R1"], ["B", "R2"], ["R1", "R2"]], seeds: { A: ["R1", "R2"], B: ["R1", "R2"] } });
    n.run(2000);
    n.stream("A", "B", 1000);
    const used = n.r.A.pathTo(n.id("B"))!.replace("relay:", "") as NodeId;
    const other = used === n.id("R1") ? n.id("R2") : n.id("R1");
    n.fabric.kill(used);
    const before = n.got.B.length;
    n.stream("A", "B", 3000);
    expect(n.r.A.pathTo(n.id("B"))).toBe(`relay:${other}`);
    expect(n.got.B.length - before).toBeGreaterThan(40); // of 60 sent: only the first second may be lost
  });

  test("traffic moves to a direct link once it opens (first packets went by relay)", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"], ["A", "B"]], seeds: { A: ["R"], B: ["R"] } });
    n.run(2000);
    expect(n.send("A", "B")).toBe(true);
    expect(n.r.A.pathTo(n.id("B"))).toBe(`relay:${n.id("R")}`);
    n.stream("A", "B", 2000);
    expect(n.r.A.pathTo(n.id("B"))).toBe("direct");
    expect(n.r.A.stats.sentRelayed).toBeGreaterThan(0);
    expect(n.r.A.stats.sentDirect).toBeGreaterThan(0);
  });

  test("an idle direct link closes after the idle timeout; relay links stay", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"], ["A", "B"]], seeds: { A: ["R"], B: ["R"] }, idleTimeoutMs: 3000 });
    n.run(2000);
    n.stream("A", "B", 2000);
    expect(n.fabric.port(n.id("A")).link(n.id("B"))?.state).toBe("open");
    n.run(5000);
    expect(n.fabric.port(n.id("A")).link(n.id("B"))).toBeUndefined();
    expect(n.fabric.port(n.id("A")).link(n.id("R"))?.state).toBe("open");
  });

  test("lookup: an edge gets another node's record from its relay", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { A: ["R"], B: ["R"] } });
    n.run(3000);
    n.r.A.lookup(n.id("B"));
    n.run(100);
    expect(n.records.A.some((r) => r.id === n.id("B") && r.relays.includes(n.id("R")))).toBe(true);
  });

  test("a relay with no route says so, and the sender uses another relay", () => {
    // R1 is the faster relay for A but cannot reach B; R2 can.
    const n = build({
      relays: ["R1", "R2"],
      edges: ["A", "B"],
      links: [["A", "R1"], ["A", "R2"], ["B", "R2"]],
      seeds: { A: ["R1", "R2"], B: ["R2"] },
      delayMs: (a, b) => (a === "R2" || b === "R2" ? 10 : 1),
    });
    n.run(3000);
    n.stream("A", "B", 2000);
    expect(n.r.R1.stats.droppedNoRoute).toBeGreaterThan(0);
    expect(n.r.A.pathTo(n.id("B"))).toBe(`relay:${n.id("R2")}`);
    expect(n.got.B.length).toBeGreaterThan(30);
  });
});
