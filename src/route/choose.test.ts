import { describe, expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { choosePath, DIRECT_LOSS_MARGIN, pathCost, pathName, RELAY_HOP_COST_MS, type PathCandidate } from "./choose.ts";

const R1 = "1".repeat(32) as NodeId, R2 = "2".repeat(32) as NodeId;
const direct = (o: Partial<PathCandidate> = {}): PathCandidate => ({ path: { kind: "direct" }, alive: true, rttMs: 10, loss: 0, ...o });
const relay = (via: NodeId, o: Partial<PathCandidate> = {}): PathCandidate => ({ path: { kind: "relay", via }, alive: true, rttMs: 10, loss: 0, ...o });
const chosen = (cs: PathCandidate[], current?: string) => {
  const c = choosePath(cs, current);
  return c && pathName(c.path);
};

describe("choosePath", () => {
  test("nothing live, nothing chosen", () => {
    expect(choosePath([])).toBeUndefined();
    expect(choosePath([direct({ alive: false }), relay(R1, { alive: false })])).toBeUndefined();
    expect(choosePath([relay(R1, { alive: false }), relay(R2, { alive: false })], `relay:${R1}`)).toBeUndefined();
  });

  test("dead paths never win, however good they look", () => {
    expect(chosen([direct({ alive: false, rttMs: 1 }), relay(R1, { rttMs: 90 })])).toBe(`relay:${R1}`);
    expect(chosen([relay(R1, { alive: false, rttMs: 1 }), relay(R2, { rttMs: 90, loss: 0.5 })])).toBe(`relay:${R2}`);
    expect(chosen([relay(R1, { alive: false, rttMs: 1 }), direct({ rttMs: 300, loss: 0.9 })])).toBe("direct");
  });

  test("a live direct path beats relays even with a higher first-hop RTT", () => {
    expect(chosen([relay(R1, { rttMs: 1 }), direct({ rttMs: 30 })])).toBe("direct");
    expect(chosen([direct({ rttMs: undefined }), relay(R1, { rttMs: 1 })])).toBe("direct");
  });

  test("…unless it loses more than DIRECT_LOSS_MARGIN above the best relay path", () => {
    const lossy = direct({ loss: DIRECT_LOSS_MARGIN + 0.05 });
    expect(chosen([lossy, relay(R1, { loss: 0.1 })])).toBe("direct");
    expect(chosen([lossy, relay(R1, { loss: 0 })])).toBe(`relay:${R1}`);
    // Exactly at the margin the direct path still wins; just over it, the relay does.
    expect(chosen([direct({ loss: DIRECT_LOSS_MARGIN }), relay(R1, { loss: 0 })])).toBe("direct");
    expect(chosen([direct({ loss: DIRECT_LOSS_MARGIN + 0.001 }), relay(R1, { loss: 0 })])).toBe(`relay:${R1}`);
    // The comparison is with the best live relay, not a dead one.
    expect(chosen([lossy, relay(R1, { loss: 0, alive: false }), relay(R2, { loss: 0.5 })])).toBe("direct");
  });

  test("among relays the lower cost wins; loss and an unmeasured RTT weigh in", () => {
    expect(chosen([relay(R1, { rttMs: 20 }), relay(R2, { rttMs: 10 })])).toBe(`relay:${R2}`);
    expect(chosen([relay(R1, { rttMs: 20 }), relay(R2, { rttMs: 10, loss: 0.2 })])).toBe(`relay:${R1}`);
    expect(pathCost(relay(R1, { rttMs: 10, loss: 0.1 }))).toBeGreaterThan(pathCost(relay(R1, { rttMs: 10 })));
    expect(pathCost(relay(R1, { rttMs: 10 }))).toBe(10 + RELAY_HOP_COST_MS);
    expect(pathCost(direct({ rttMs: 10 }))).toBe(10);
    // A relay not measured yet counts as a slow one: a measured 30 ms relay is preferred, a 100 ms one is not.
    expect(chosen([relay(R1, { rttMs: undefined }), relay(R2, { rttMs: 30 })])).toBe(`relay:${R2}`);
    expect(chosen([relay(R1, { rttMs: undefined }), relay(R2, { rttMs: 100 })])).toBe(`relay:${R1}`);
  });

  test("hysteresis: the current relay stays while within 20% + 2 ms of the best, and goes when clearly worse", () => {
    const cur = `relay:${R1}`;
    // Best: R2 at 10 ms RTT, cost 15; keep R1 while its cost ≤ 15 × 1.2 + 2 = 20, i.e. RTT ≤ 15 ms.
    expect(chosen([relay(R1, { rttMs: 11 }), relay(R2, { rttMs: 10 })], cur)).toBe(cur);
    expect(chosen([relay(R1, { rttMs: 15 }), relay(R2, { rttMs: 10 })], cur)).toBe(cur);
    expect(chosen([relay(R1, { rttMs: 15.5 }), relay(R2, { rttMs: 10 })], cur)).toBe(`relay:${R2}`);
    expect(chosen([relay(R1, { rttMs: 30 }), relay(R2, { rttMs: 10 })], cur)).toBe(`relay:${R2}`);
    // Without a current path (or with another one) the cheapest wins outright.
    expect(chosen([relay(R1, { rttMs: 11 }), relay(R2, { rttMs: 10 })])).toBe(`relay:${R2}`);
    expect(chosen([relay(R1, { rttMs: 11 }), relay(R2, { rttMs: 10 })], "direct")).toBe(`relay:${R2}`);
    // A dead current path is left at once.
    expect(chosen([relay(R1, { alive: false }), relay(R2, { rttMs: 50 })], cur)).toBe(`relay:${R2}`);
    // Hysteresis never keeps a relay over a usable direct path.
    expect(chosen([relay(R1, { rttMs: 1 }), direct({ rttMs: 40 })], cur)).toBe("direct");
  });
});
