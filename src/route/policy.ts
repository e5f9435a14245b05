// Path policy: a discounted-UCB bandit (Garivier & Moulines, "On upper-confidence bound policies for
// switching bandit problems", 2011) choosing among a destination's relay paths, with a reward that
// weighs latency, loss and goodput, and hysteresis so flows do not flap.
//
// Each round (a decision interval), every arm's discounted count N and reward sum S decay by gamma;
// the arms observed this round add their reward. The index of an arm is S/N + c·sqrt(ξ·ln(ΣN)/N):
// the discount forgets old evidence, so the policy follows arms whose quality changes over time.
// Arms never observed come first. The current arm is kept unless another's index beats it by
// `margin`, and never left before `minDwellRounds` (a flow stays on one path unless it degrades).
//
// This module is pure (no clock, no I/O) so that the simulation and the unit tests drive it directly.

/** What a path's measurements say, for the reward. */
export interface PathMeasure {
  rttMs: number;
  /** 0..1 */
  loss: number;
  /** Delivered bits per second on the path (0 when unknown). */
  goodputBps: number;
}

/** How much each part of the reward counts (they are normalised to sum to 1). */
export interface RewardWeights {
  latency: number;
  loss: number;
  goodput: number;
}

export const DEFAULT_WEIGHTS: RewardWeights = { latency: 0.5, loss: 0.3, goodput: 0.2 };
/** The RTT at which the latency part of the reward is one half. */
export const RTT_HALF_MS = 50;
/** The goodput at which the goodput part of the reward is one half. */
export const GOODPUT_HALF_BPS = 20e6;

/** A reward in [0, 1]: higher is better. */
export function reward(m: PathMeasure, w: RewardWeights = DEFAULT_WEIGHTS): number {
  const total = w.latency + w.loss + w.goodput || 1;
  const latency = 1 / (1 + Math.max(0, m.rttMs) / RTT_HALF_MS);
  const loss = 1 - Math.min(1, Math.max(0, m.loss));
  const goodput = m.goodputBps / (m.goodputBps + GOODPUT_HALF_BPS);
  return (w.latency * latency + w.loss * loss + w.goodput * goodput) / total;
}

export interface DucbOptions {
  /** Discount per round (0 < gamma < 1): evidence halves every ln(0.5)/ln(gamma) rounds. */
  gamma: number;
  /** Exploration scale. */
  c: number;
  /** How much higher another arm's index must be to leave the current arm. */
  margin: number;
  /** Rounds an arm is kept at least once chosen. */
  minDwellRounds: number;
}

// Chosen on synthetic streams (converge, recover, no flapping): see policy.test.ts.
export const DEFAULT_DUCB: DucbOptions = { gamma: 0.98, c: 0.1, margin: 0.05, minDwellRounds: 3 };

/**
 * The settings the router's path policy uses: every path is observed every round (probes give RTT and
 * loss for all; goodput is remembered, GoodputMemory), so evidence may be forgotten faster than in a
 * pure bandit. Chosen by the policy comparison (src/sim/policies.ts).
 */
export const PATH_DUCB: DucbOptions = { gamma: 0.8, c: 0.1, margin: 0.05, minDwellRounds: 3 };

export interface ArmIndex {
  arm: string;
  /** Discounted number of observations. */
  n: number;
  mean: number;
  bonus: number;
  index: number;
}

/**
 * Goodput is seen only on the path that carries the data. For the others we remember what they gave
 * when they last carried it, drifting back (geometrically) toward an optimistic prior (half-life `halfLifeRounds`),
 * so a path that was poor long ago gets tried again (a relay good only at night is found again).
 */
export class GoodputMemory {
  private readonly seen = new Map<string, { bps: number; round: number }>();
  constructor(private readonly priorBps = 1e9, private readonly halfLifeRounds = 300) {}

  /** The path carried data this round and delivered `bps`. */
  record(arm: string, bps: number, round: number): void {
    this.seen.set(arm, { bps, round });
  }

  estimate(arm: string, round: number): number {
    const s = this.seen.get(arm);
    if (!s) return this.priorBps;
    // Drift geometrically (in log space): a linear drift toward a prior a thousand times larger would
    // make every remembered path look better than the measured one within a few rounds.
    const keep = Math.pow(0.5, (round - s.round) / this.halfLifeRounds);
    return Math.pow(Math.max(s.bps, 1), keep) * Math.pow(this.priorBps, 1 - keep);
  }
}

/** One destination's bandit over its candidate paths (arms named by path, e.g. "relay:<id>"). */
export class DiscountedUcb {
  private readonly arms = new Map<string, { n: number; s: number }>();
  private current?: string;
  private dwell = 0;
  readonly options: DucbOptions;

  constructor(options: Partial<DucbOptions> = {}) {
    this.options = { ...DEFAULT_DUCB, ...options };
  }

  /** End a round: decay every arm, then add this round's observations (arm → reward in [0, 1]). */
  update(observed: ReadonlyMap<string, number> | Record<string, number>): void {
    const g = this.options.gamma;
    for (const a of this.arms.values()) {
      a.n *= g;
      a.s *= g;
    }
    const entries = observed instanceof Map ? [...observed] : Object.entries(observed);
    for (const [arm, r] of entries) {
      if (!Number.isFinite(r)) continue;
      let a = this.arms.get(arm);
      if (!a) this.arms.set(arm, (a = { n: 0, s: 0 }));
      a.n += 1;
      a.s += Math.min(1, Math.max(0, r));
    }
  }

  /** Every candidate arm's index now. */
  indices(candidates: readonly string[]): ArmIndex[] {
    let total = 0;
    for (const arm of candidates) total += this.arms.get(arm)?.n ?? 0;
    const logTotal = Math.log(Math.max(total, 1.0001));
    return candidates.map((arm) => {
      const a = this.arms.get(arm);
      if (!a || a.n < 1e-9) return { arm, n: 0, mean: 0, bonus: Infinity, index: Infinity };
      const mean = a.s / a.n;
      const bonus = this.options.c * Math.sqrt((2 * logTotal) / a.n);
      return { arm, n: a.n, mean, bonus, index: mean + bonus };
    });
  }

  /** Pick the arm to use for the next round among `candidates` (the live paths). */
  choose(candidates: readonly string[]): string | undefined {
    if (candidates.length === 0) return (this.current = undefined);
    const idx = this.indices(candidates);
    let best = idx[0];
    for (const i of idx) if (i.index > best.index || (i.index === best.index && i.arm < best.arm)) best = i;
    const cur = this.current !== undefined ? idx.find((i) => i.arm === this.current) : undefined;
    if (cur && (this.dwell < this.options.minDwellRounds || best.index <= cur.index + this.options.margin)) {
      this.dwell++;
      return cur.arm;
    }
    if (best.arm !== this.current) this.dwell = 0;
    this.dwell++;
    return (this.current = best.arm);
  }

  get chosen(): string | undefined {
    return this.current;
  }
}
