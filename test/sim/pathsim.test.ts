// The path policy in the packet-level simulation: the real Router choosing among relays whose delay,
// loss and capacity change over time, against fixed relay rules run by the same Router. Simulated
// time, deterministic for the seed.
import { expect, setDefaultTimeout, test } from "bun:test";
import { RELAY_POLICIES, runPathSim } from "../../src/sim/pathsim.ts";
import { SCENARIOS } from "../../src/sim/policies.ts";

setDefaultTimeout(180_000);

test("packet level: discounted UCB has the least total regret, settles, and finds the high-bandwidth relay", () => {
  const total: Record<string, number> = {};
  for (const s of SCENARIOS) {
    const results = RELAY_POLICIES.map((p) => runPathSim(s, p, 1, 180));
    console.log(`${s.name}: ${results.map((r) => `${r.policy} regret ${r.regret} delay ${r.meanDelayMs} ms goodput ${r.goodputMbps} Mbit/s switches ${r.switches}`).join("; ")}`);
    const by = Object.fromEntries(results.map((r) => [r.policy, r]));
    for (const r of results) total[r.policy] = (total[r.policy] ?? 0) + r.regret;
    expect(by["discounted-ucb"].regret).toBeLessThan(by.random.regret);
    expect(by["discounted-ucb"].regret).toBeLessThan(by["round-robin"].regret);
    expect(by["discounted-ucb"].switches).toBeLessThan(15);
    if (s.name.startsWith("high RTT")) expect(by["discounted-ucb"].goodputMbps).toBeGreaterThan(by["lowest-rtt"].goodputMbps * 5);
  }
  console.log(`packet-level total regret: ${Object.entries(total).map(([p, r]) => `${p} ${r.toFixed(1)}`).join(", ")}`);
  expect(total["discounted-ucb"]).toBeLessThan(total["lowest-rtt"] / 2);
  expect(total["discounted-ucb"]).toBeLessThan(total.random / 3);
});
