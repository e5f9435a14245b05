// Discovery (./discovery.ts): lookups by id and by address, and gossip, on in-memory links.
import { describe, expect, test } from "bun:test";
import { build } from "../sim/routers.ts";
import type { NodeId } from "../identity/identity.ts";
import { encodeHop, HOP_RECORD } from "./frame.ts";
import { encodeRecord, RECORD_LIFETIME_MS } from "./record.ts";
import { simRecordCrypto } from "../sim/crypto.ts";

describe("discovery: records", () => {
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

  test("a lookup the relay missed is answered when the record comes (the asker need not ask again)", () => {
    // B is not attached yet when A asks (no seed told it of R); it attaches later.
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { A: ["R"] } });
    n.run(2000);
    n.r.A.lookup(n.id("B"));
    n.run(200);
    expect(n.records.A.some((r) => r.id === n.id("B"))).toBe(false);
    n.r.B.addRelay(n.id("R"));
    n.run(1000);
    expect(n.records.A.filter((r) => r.id === n.id("B")).length).toBe(1);
  });

  test("a lookup made before any relay is linked does not hold back the next one (a node just up asks again once it has a relay)", () => {
    const n = build({ relays: ["R"], edges: ["A", "B"], links: [["A", "R"], ["B", "R"]], seeds: { B: ["R"] } });
    n.run(2000);
    n.r.A.lookup(n.id("B")); // nobody to ask yet
    n.r.A.addRelay(n.id("R"));
    n.run(700);
    expect(n.r.A.linksReport().some((l) => l.peer === n.id("R") && l.alive)).toBe(true);
    n.r.A.lookup(n.id("B")); // the next packet, well within a second of the first
    n.run(100);
    expect(n.records.A.filter((r) => r.id === n.id("B")).length).toBe(1);
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
});

// Issue 14, 6: relays kept records from any identity, without a count cap; 64 fake relay records filled
// an edge's relay slots. Now only a node itself, or a relay passing gossip on, may hand over a record,
// and what one link may fill is capped.
describe("discovery: records from hostile members", () => {
  const fakeId = (i: number) => (0xe000_0000 + i).toString(16).padStart(32, "0") as NodeId;
  const fakeRecord = (i: number, relay: boolean, now: number) =>
    encodeRecord({ id: fakeId(i), relay, relays: [], hints: [], issued: now, expires: now + RECORD_LIFETIME_MS }, simRecordCrypto(fakeId(i)));

  test("an edge cannot plant records of identities it made up", () => {
    const n = build({ relays: ["R"], edges: ["A", "M"], links: [["A", "R"], ["M", "R"]], seeds: { A: ["R"], M: ["R"] } });
    n.run(2000);
    const refused = n.r.R.stats.recordsRefused;
    for (let i = 0; i < 200; i++) n.r.R.receive(n.id("M"), encodeHop(HOP_RECORD, fakeRecord(i, i % 2 === 0, n.clock.now)));
    expect(n.r.R.stats.recordsRefused - refused).toBe(200);
    expect(n.r.R.record(fakeId(0))).toBeUndefined();
  });

  test("a hostile 'relay' fills at most a few of an edge's relay slots", () => {
    const n = build({ relays: ["R", "M"], edges: ["A"], links: [["A", "R"], ["A", "M"]], seeds: { A: ["R", "M"] } });
    n.run(3000);
    for (let i = 0; i < 100; i++) n.r.A.receive(n.id("M"), encodeHop(HOP_RECORD, fakeRecord(i, true, n.clock.now)));
    let kept = 0;
    for (let i = 0; i < 100; i++) if (n.r.A.record(fakeId(i))) kept++;
    expect(kept).toBeLessThanOrEqual(8);
  });
});
