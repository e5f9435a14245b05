import { describe, expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { choosePath, DIRECT_LOSS_MARGIN, pathCost, pathName, type PathCandidate } from "./choose.ts";

const R1 = "1".repeat(32) as NodeId, R2 = "2".repeat(32) as NodeId;
const direct = (o: Partial<PathCandidate> = {}): PathCandidate => ({ path: { kind: "direct" }, alive: true, rttMs: 10, loss: 0, ...o });
const relay = (via: NodeId, o: Partial<PathCandidate> = {}): PathCandidate => ({ path: { kind: "relay", via }, alive: true, rttMs: 10, loss: 0, ...o });

describe("choosePath", () => {
  test("nothing live, nothing chosen", () => {
    expect(choosePath([])).toBeUndefined();
    expect(choosePath([direct({ alive: false }), relay(R1, { alive: false })])).toBeUndefined();
  });

  test("dead paths never win, however good they look", () => {
    expect(pathName(choosePath([direct({ alive: false, rttMs: 1 }), relay(R1, { rttMs: 90 })])!.path)).toBe(`relay:${R1}`);
  });

  test("a live direct path beats relays even with a higher first-hop RTT", () => {
    expect(choosePath([relay(R1, { rttMs: 1 }), direct({ rttMs: 30 })])!.path.kind).toBe("direct");
  });

  test("…unless it loses clearly more than the best relay path", () => {
    const lossy = direct({ loss: DIRECT_LOSS_MARGIN + 0.05 });
    expect(choosePath([lossy, relay(R1, { loss: 0.1 })])!.path.kind).toBe("direct");
    expect(choosePath([lossy, relay(R1, { loss: 0 })])!.path.kind).toBe("relay");
  });

  test("among relays the lower cost wins; loss weighs in", () => {
    expect(pathName(choosePath([relay(R1, { rttMs: 20 }), relay(R2, { rttMs: 10 })])!.path)).toBe(`relay:${R2}`);
    expect(pathName(choosePath([relay(R1, { rttMs: 20 }), relay(R2, { rttMs: 10, loss: 0.2 })])!.path)).toBe(`relay:${R1}`);
    expect(pathCost(relay(R1, { rttMs: 10, loss: 0.1 }))).toBeGreaterThan(pathCost(relay(R1, { rttMs: 10 })));
  });

  test("hysteresis: the current relay stays while within 20% + 2 ms, and goes when clearly worse", () => {
    const cur = `relay:${R1}`;
    expect(pathName(choosePath([relay(R1, { rttMs: 11 }), relay(R2, { rttMs: 10 })], cur)!.path)).toBe(cur);
    expect(pathName(choosePath([relay(R1, { rttMs: 30 }), relay(R2, { rttMs: 10 })], cur)!.path)).toBe(`relay:${R2}`);
    // A dead current path is left at once.
    expect(pathName(choosePath([relay(R1, { alive: false }), relay(R2, { rttMs: 50 })], cur)!.path)).toBe(`relay:${R2}`);
  });
});
