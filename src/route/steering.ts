// Steering: the path policy's side of the router. Per destination with traffic and two or more live
// relay paths, a round every POLICY_ROUND_MS: measure (probes from the router, goodput from the
// destination's delivery reports), reward, let the policy choose (discounted UCB, or a fixed rule the
// simulation compares it with), and log the decision. Also counts what arrives here and reports it
// back to each source once a round (inner type 0xC8, src/route/frame.ts).
import type { NodeId } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import { pathName, type PathCandidate } from "./choose.ts";
import { TYPE_REPORT } from "./frame.ts";
import { DEFAULT_WEIGHTS, DiscountedUcb, GoodputMemory, PATH_DUCB, reward, type ArmIndex, type RewardWeights } from "./policy.ts";

/** One round of the path policy. */
export const POLICY_ROUND_MS = 1_000;
/** Below this rate a flow is application-limited: its goodput says nothing about the path. */
const BUSY_BPS = 1e6;
/** At most this many paths in one delivery report. */
const REPORT_PATHS = 8;

export type RelayPolicy = "discounted-ucb" | "lowest-rtt" | "random" | "round-robin";

/** One round of the path policy for one destination: what it saw, what it chose. */
export interface Decision {
  t: number;
  dst: NodeId;
  round: number;
  candidates: { path: string; rtt_ms: number | null; loss: number; goodput_bps: number; reward: number; index: number | null }[];
  choice: string | undefined;
  /** The reward observed this round for the path chosen in the previous round. */
  reward: number | null;
}

export interface PolicyView {
  choice: string | null;
  rule: string | null;
  round: number;
  indices: ArmIndex[];
  rewards: Record<string, number>;
  goodput_bps: Record<string, number>;
  choices: Record<string, number>;
}

export interface SteeringOptions {
  /** Send an end-to-end payload (a delivery report) to a node. */
  send(dst: NodeId, inner: Uint8Array): boolean;
  relayPolicy?: RelayPolicy;
  random?(): number;
  onDecision?(d: Decision): void;
  log?: Log;
}

interface State {
  bandit: DiscountedUcb;
  memory: GoodputMemory;
  round: number;
  roundStart: number;
  /** The relay path the policy picked for the coming round, and the round it was picked. */
  choice?: string;
  since: number;
  /** Bytes sent through relays this round. */
  sentBytes: number;
  /** Bytes the destination reported receiving this round, by path. */
  reported: Map<string, number>;
  lastRewards: Record<string, number>;
  choices: Map<string, number>;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

export class Steering {
  /** The reward weights; replaced on reload or by an outside policy. */
  weights: RewardWeights = DEFAULT_WEIGHTS;
  private readonly states = new Map<NodeId, State>();
  /** Data bytes received this round, by source and by the first relay they came through (or direct). */
  private readonly received = new Map<NodeId, Map<NodeId | "direct", number>>();

  constructor(private readonly opts: SteeringOptions) {}

  /** The relay path the policy picked for `dst`, if it has an opinion. */
  choice(dst: NodeId): string | undefined {
    return this.states.get(dst)?.choice;
  }

  /** We sent `bytes` to `dst` through a relay. */
  sent(dst: NodeId, bytes: number): void {
    const s = this.states.get(dst);
    if (s) s.sentBytes += bytes;
  }

  /** `bytes` of data from `src` arrived here, through relay `via` (undefined: direct). */
  delivered(src: NodeId, via: NodeId | undefined, bytes: number): void {
    let m = this.received.get(src);
    if (!m) this.received.set(src, (m = new Map()));
    const k = via ?? "direct";
    m.set(k, (m.get(k) ?? 0) + bytes);
  }

  /** A delivery report from `src` about what of ours arrived there. */
  report(src: NodeId, inner: Uint8Array): void {
    const s = this.states.get(src);
    if (!s) return;
    const n = inner[1] ?? 0;
    for (let i = 0; i < n && inner.length >= 2 + 20 * (i + 1); i++) {
      const o = 2 + 20 * i;
      const relay = inner.subarray(o, o + 16);
      const name = relay.every((x) => x === 0) ? "direct" : `relay:${Buffer.from(relay).toString("hex")}`;
      s.reported.set(name, (s.reported.get(name) ?? 0) + new DataView(inner.buffer, inner.byteOffset + o + 16, 4).getUint32(0));
    }
  }

  /** Tell each source how many bytes of its data arrived this round, by path. */
  sendReports(): void {
    for (const [src, m] of this.received) {
      const entries = [...m].slice(0, REPORT_PATHS);
      const b = new Uint8Array(2 + 20 * entries.length);
      const v = new DataView(b.buffer);
      b[0] = TYPE_REPORT;
      b[1] = entries.length;
      entries.forEach(([via, bytes], i) => {
        if (via !== "direct") b.set(Buffer.from(via, "hex"), 2 + 20 * i);
        v.setUint32(2 + 20 * i + 16, Math.min(bytes, 0xffffffff));
      });
      this.opts.send(src, b);
    }
    this.received.clear();
  }

  /** Drop what we hold for a destination that went idle. */
  forget(dst: NodeId): void {
    this.states.delete(dst);
    this.received.delete(dst);
  }

  /** One round for `dst`, given its live relay paths and the path its packets took. */
  round(now: number, dst: NodeId, relays: PathCandidate[], carriedPath: string | undefined): void {
    if (relays.length < 2 && !this.states.has(dst)) return;
    let s = this.states.get(dst);
    if (!s) this.states.set(dst, (s = { bandit: new DiscountedUcb(PATH_DUCB), memory: new GoodputMemory(), round: 0, since: 0, roundStart: now, sentBytes: 0, reported: new Map(), lastRewards: {}, choices: new Map() }));
    const round = ++s.round;
    const secs = Math.max(0.001, (now - s.roundStart) / 1000);
    // Goodput: what the destination reported it received on the path we used. Reports lag a round,
    // so a path is measured only once it has carried the flow for two whole rounds.
    const carried = s.choice ?? carriedPath;
    const sentBps = (s.sentBytes * 8) / secs;
    if (carried && sentBps >= BUSY_BPS && round - s.since >= 2) s.memory.record(carried, Math.min(sentBps, ((s.reported.get(carried) ?? 0) * 8) / secs), round);
    s.reported.clear();
    s.sentBytes = 0;
    s.roundStart = now;
    const arms = relays.map((c) => pathName(c.path));
    const rewards: Record<string, number> = {};
    const features = relays.map((c, i) => {
      const goodput = s.memory.estimate(arms[i], round);
      rewards[arms[i]] = reward({ rttMs: c.rttMs ?? 50, loss: c.loss, goodputBps: goodput }, this.weights);
      return { path: arms[i], rtt_ms: c.rttMs === undefined ? null : r3(c.rttMs), loss: r3(c.loss), goodput_bps: Math.round(goodput), reward: r4(rewards[arms[i]]) };
    });
    s.bandit.update(rewards);
    const observed = carried !== undefined ? rewards[carried] : undefined;
    s.lastRewards = rewards;
    const before = s.choice;
    s.choice = this.pick(s, relays, arms, round);
    if (s.choice) s.choices.set(s.choice, (s.choices.get(s.choice) ?? 0) + 1);
    if (s.choice !== before) {
      s.since = round;
      if (before) this.opts.log?.("info", `path policy for ${dst}: ${before} → ${s.choice}`);
    }
    if (!this.opts.onDecision) return;
    const idx = new Map(s.bandit.indices(arms).map((i) => [i.arm, i.index]));
    this.opts.onDecision({
      t: Math.round(now),
      dst,
      round,
      candidates: features.map((x) => ({ ...x, index: Number.isFinite(idx.get(x.path)) ? r4(idx.get(x.path)!) : null })),
      choice: s.choice,
      reward: observed === undefined ? null : r4(observed),
    });
  }

  private pick(s: State, relays: PathCandidate[], arms: string[], round: number): string | undefined {
    switch (this.opts.relayPolicy ?? "discounted-ucb") {
      case "discounted-ucb":
        return s.bandit.choose(arms);
      case "lowest-rtt":
        return relays.length ? pathName(relays.reduce((b, c) => ((c.rttMs ?? Infinity) < (b.rttMs ?? Infinity) ? c : b)).path) : undefined;
      case "random":
        return arms[Math.floor((this.opts.random ?? Math.random)() * arms.length)];
      case "round-robin":
        return arms[round % Math.max(1, arms.length)];
    }
  }

  /** The policy's view of `dst` over these relay paths (for status and the API). */
  view(dst: NodeId, arms: string[], rule: string | null): PolicyView | undefined {
    const s = this.states.get(dst);
    if (!s) return undefined;
    const goodput = Object.fromEntries(arms.map((a) => [a, Math.round(s.memory.estimate(a, s.round))]));
    return { choice: s.choice ?? null, rule, round: s.round, indices: s.bandit.indices(arms), rewards: s.lastRewards, goodput_bps: goodput, choices: Object.fromEntries(s.choices) };
  }
}
