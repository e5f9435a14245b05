// The relay simulation in CI: 300 nodes running the real Router over in-memory links, relays killed at
// random. Times asserted here are simulated (deterministic for the seed), not wall-clock.
import { expect, setDefaultTimeout, test } from "bun:test";
import { runSimulation } from "../../src/sim/scenario.ts";

setDefaultTimeout(120_000);

test("300 simulated nodes: packets get through, paths heal after relay deaths, records converge", () => {
  const r = runSimulation();
  console.log(
    `sim: ${r.relays} relays + ${r.edges} edges, ${r.options.flows} flows, ${r.killed.length} relays killed; ` +
      `delivery ${(r.deliveryRatio * 100).toFixed(2)}% (${r.delivered}/${r.sent}, ${r.options.loss * 100}% loss per hop); ` +
      `reroute median ${r.rerouteMs.median.toFixed(0)} ms, p95 ${r.rerouteMs.p95.toFixed(0)} ms, max ${r.rerouteMs.max.toFixed(0)} ms over ${r.rerouteMs.count} flows; ` +
      `gossip to all relays median ${r.gossipMs.median.toFixed(1)} ms, max ${r.gossipMs.max.toFixed(1)} ms (${r.gossipMs.converged}/${r.gossipMs.count}); ` +
      `sent ${r.direct} direct, ${r.relayed} relayed (${r.forwarded} forwards); drops ${JSON.stringify(r.drops)}; ` +
      `per edge ≤ ${r.maxLinksPerEdge} links, ≤ ${r.maxRecordsPerEdge} records, ≤ ${r.maxFlowsPerEdge} flows; wall ${r.wallMs} ms (not asserted)`,
  );
  expect(r.sent).toBeGreaterThan(40_000);
  expect(r.deliveryRatio).toBeGreaterThan(0.9);
  expect(r.killed.length).toBe(4);
  // Relay deaths hurt some flows, and every one of them came back, within two simulated seconds.
  expect(r.rerouteMs.count).toBeGreaterThan(0);
  expect(r.rerouteMs.unrecovered).toBe(0);
  expect(r.rerouteMs.max).toBeLessThan(2000);
  // Every edge record published after warm-up reached every live relay.
  expect(r.gossipMs.count).toBeGreaterThan(0);
  expect(r.gossipMs.converged).toBe(r.gossipMs.count);
  expect(r.gossipMs.max).toBeLessThan(1000);
  // What an edge holds grows with its relays and peers, not with the 300 nodes.
  expect(r.maxLinksPerEdge).toBeLessThanOrEqual(6);
  expect(r.maxRecordsPerEdge).toBeLessThan(r.relays + 10);
  expect(r.direct).toBeGreaterThan(0);
  expect(r.drops.loop).toBe(0);
});

test("the simulation is deterministic for a seed", () => {
  const small = { nodes: 60, regions: 2, relaysPerRegion: 4, flows: 20, durationS: 25, failures: 1 };
  const a = runSimulation({ ...small, seed: 3 }), b = runSimulation({ ...small, seed: 3 });
  expect(a.delivered).toBe(b.delivered);
  expect(a.killed).toEqual(b.killed);
  expect(a.rerouteMs).toEqual(b.rerouteMs);
});
