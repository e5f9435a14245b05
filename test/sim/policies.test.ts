// The path policy against fixed rules on relays that change over time (src/sim/policies.ts).
// Deterministic (five fixed seeds); regret is in reward units summed over one-second rounds.
import { expect, test } from "bun:test";
import { comparePolicies } from "../../src/sim/policies.ts";

test("discounted UCB beats lowest-RTT, random and round robin over the scenarios, and does not flap", () => {
  const table = comparePolicies(5);
  const total: Record<string, number> = {};
  for (const { scenario, results } of table) {
    console.log(`${scenario}: ${results.map((r) => `${r.policy} regret ${r.regret} rtt ${r.meanRttMs} ms goodput ${r.meanGoodputMbps} Mbit/s switches ${r.switches}`).join("; ")}`);
    for (const r of results) total[r.policy] = (total[r.policy] ?? 0) + r.regret;
    const by = Object.fromEntries(results.map((r) => [r.policy, r]));
    // Never worse than blind choice, in any scenario.
    expect(by["discounted-ucb"].regret).toBeLessThan(by.random.regret);
    expect(by["discounted-ucb"].regret).toBeLessThan(by["round-robin"].regret);
    // Flows stay put: far fewer path changes than the blind rules.
    expect(by["discounted-ucb"].switches).toBeLessThan(by.random.switches / 10);
  }
  console.log(`total regret: ${Object.entries(total).map(([p, r]) => `${p} ${r.toFixed(1)}`).join(", ")}`);
  expect(total["discounted-ucb"]).toBeLessThan(total["lowest-rtt"] / 5);
  const bandwidth = table.find((t) => t.scenario.startsWith("high RTT"))!.results;
  const ucb = bandwidth.find((r) => r.policy === "discounted-ucb")!, rtt = bandwidth.find((r) => r.policy === "lowest-rtt")!;
  expect(ucb.meanGoodputMbps).toBeGreaterThan(rtt.meanGoodputMbps * 10);
});
