// Policy comparison: the discounted-UCB path policy against fixed rules (lowest RTT, random, round
// robin) on relays whose quality changes over time. Rounds of one second; a destination has one
// candidate path per relay. Every relay's RTT and loss are probed each round (cheap, all paths);
// goodput is seen only on the path the data takes. Deterministic for a seed.
//
// Regret: Σ over rounds of (best relay's true reward − chosen relay's true reward), with the reward
// of src/route/policy.ts under the scenario's weights.
import { DEFAULT_WEIGHTS, DiscountedUcb, GoodputMemory, PATH_DUCB, reward, type DucbOptions, type PathMeasure, type RewardWeights } from "../route/policy.ts";
import { rng } from "./clock.ts";

export interface Quality {
  rttMs: number;
  loss: number;
  /** Capacity in bit/s; the goodput of the path when chosen. */
  capacityBps: number;
}

export interface Scenario {
  name: string;
  rounds: number;
  weights: RewardWeights;
  /** True quality of each relay at round t. */
  relays: ((t: number) => Quality)[];
}

const dead: Quality = { rttMs: 1000, loss: 1, capacityBps: 0 };

export const SCENARIOS: Scenario[] = [
  {
    name: "a relay degrades slowly",
    rounds: 600,
    weights: DEFAULT_WEIGHTS,
    relays: [
      (t) => ({ rttMs: 10 + (140 * t) / 600, loss: (0.3 * t) / 600, capacityBps: 50e6 }),
      () => ({ rttMs: 40, loss: 0.01, capacityBps: 40e6 }),
      () => ({ rttMs: 70, loss: 0.02, capacityBps: 30e6 }),
    ],
  },
  {
    name: "a relay dies",
    rounds: 600,
    weights: DEFAULT_WEIGHTS,
    relays: [(t) => (t < 200 ? { rttMs: 10, loss: 0, capacityBps: 50e6 } : dead), () => ({ rttMs: 35, loss: 0.01, capacityBps: 40e6 }), () => ({ rttMs: 80, loss: 0.05, capacityBps: 20e6 })],
  },
  {
    name: "high RTT but far more bandwidth (throughput weights)",
    rounds: 600,
    weights: { latency: 0.2, loss: 0.2, goodput: 0.6 },
    relays: [() => ({ rttMs: 10, loss: 0, capacityBps: 5e6 }), () => ({ rttMs: 60, loss: 0, capacityBps: 200e6 })],
  },
  {
    name: "a relay good only at night (periodic)",
    rounds: 800,
    weights: DEFAULT_WEIGHTS,
    relays: [
      (t) => (Math.floor(t / 100) % 2 === 1 ? { rttMs: 12, loss: 0, capacityBps: 100e6 } : { rttMs: 120, loss: 0.1, capacityBps: 5e6 }),
      () => ({ rttMs: 45, loss: 0.01, capacityBps: 30e6 }),
    ],
  },
];

export type PolicyName = "discounted-ucb" | "lowest-rtt" | "random" | "round-robin";
export const POLICIES: PolicyName[] = ["discounted-ucb", "lowest-rtt", "random", "round-robin"];

export interface PolicyResult {
  policy: PolicyName;
  regret: number;
  /** Mean true RTT (ms) and goodput (Mbit/s) of the chosen paths, and how often the choice changed. */
  meanRttMs: number;
  meanGoodputMbps: number;
  switches: number;
}

/** One noisy probe/observation of a relay's quality. */
function observe(q: Quality, random: () => number): PathMeasure {
  const lost = q.loss >= 1 ? 1 : Math.min(1, Math.max(0, q.loss + (random() - 0.5) * 0.04));
  return { rttMs: q.rttMs * (0.85 + 0.3 * random()), loss: lost, goodputBps: q.capacityBps * (1 - q.loss) * (0.9 + 0.2 * random()) };
}

export function runPolicy(s: Scenario, policy: PolicyName, seed = 1, options: Partial<DucbOptions> = PATH_DUCB): PolicyResult {
  const random = rng(seed);
  const arms = s.relays.map((_, i) => `relay:${i}`);
  const bandit = new DiscountedUcb(options);
  const memory = new GoodputMemory();
  let regret = 0, rtt = 0, goodput = 0, switches = 0;
  let prev = -1;
  for (let t = 0; t < s.rounds; t++) {
    const truth = s.relays.map((f) => f(t));
    const probes = truth.map((q) => observe(q, random));
    let pick: number;
    switch (policy) {
      case "discounted-ucb":
        // Dead paths (every probe lost) are not candidates, as in the router.
        pick = arms.indexOf(bandit.choose(arms.filter((_, i) => probes[i].loss < 1)) ?? arms[0]);
        break;
      case "lowest-rtt":
        pick = probes.reduce((b, p, i) => (p.loss < 1 && p.rttMs < probes[b].rttMs ? i : b), probes.findIndex((p) => p.loss < 1));
        break;
      case "random":
        pick = Math.floor(random() * arms.length);
        break;
      case "round-robin":
        pick = t % arms.length;
        break;
    }
    if (pick < 0) pick = 0;
    const rewards = truth.map((q) => reward({ rttMs: q.rttMs, loss: q.loss, goodputBps: q.capacityBps * (1 - q.loss) }, s.weights));
    regret += Math.max(...rewards) - rewards[pick];
    rtt += truth[pick].rttMs;
    goodput += (truth[pick].capacityBps * (1 - truth[pick].loss)) / 1e6;
    if (prev >= 0 && pick !== prev) switches++;
    prev = pick;
    // What the policy learns this round: probes give every path's RTT and loss; only the chosen path
    // carried data, so only it has a fresh goodput (the others' is remembered, see GoodputMemory).
    if (policy === "discounted-ucb") {
      memory.record(arms[pick], probes[pick].goodputBps, t);
      bandit.update(Object.fromEntries(arms.map((a, i) => [a, reward({ ...probes[i], goodputBps: memory.estimate(a, t) }, s.weights)])));
    }
  }
  return { policy, regret: Math.round(regret * 10) / 10, meanRttMs: Math.round((rtt / s.rounds) * 10) / 10, meanGoodputMbps: Math.round((goodput / s.rounds) * 10) / 10, switches };
}

/** Every policy on every scenario, averaged over `seeds` seeds. */
export function comparePolicies(seeds = 5): { scenario: string; results: PolicyResult[] }[] {
  return SCENARIOS.map((s) => ({
    scenario: s.name,
    results: POLICIES.map((p) => {
      const runs = Array.from({ length: seeds }, (_, k) => runPolicy(s, p, k + 1));
      const avg = (f: (r: PolicyResult) => number) => Math.round((runs.reduce((a, r) => a + f(r), 0) / runs.length) * 10) / 10;
      return { policy: p, regret: avg((r) => r.regret), meanRttMs: avg((r) => r.meanRttMs), meanGoodputMbps: avg((r) => r.meanGoodputMbps), switches: avg((r) => r.switches) };
    }),
  }));
}

if (import.meta.main && process.argv[2] === "scan") {
  for (const gamma of [0.7, 0.8, 0.9, 0.95]) for (const margin of [0.01, 0.03, 0.05])
    console.log(gamma, margin, SCENARIOS.map((s) => [1, 2, 3].reduce((a, k) => a + runPolicy(s, "discounted-ucb", k, { gamma, c: 0.1, margin, minDwellRounds: 3 }).regret, 0) / 3).map((x) => x.toFixed(1)).join(" "));
} else if (import.meta.main) {
  for (const { scenario, results } of comparePolicies()) {
    console.log(`\n${scenario}`);
    console.log("policy            regret   RTT ms   goodput Mbit/s   switches");
    for (const r of results) console.log(`${r.policy.padEnd(16)} ${String(r.regret).padStart(7)} ${String(r.meanRttMs).padStart(8)} ${String(r.meanGoodputMbps).padStart(16)} ${String(r.switches).padStart(10)}`);
  }
}
