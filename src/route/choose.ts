// Path choice: one pure function from measured candidates to the path packets take.
//
// Rules, in order: dead paths never win. A live direct path wins unless it loses far more probes
// (DIRECT_LOSS_MARGIN) than the best relay path: a relay path's measured RTT is only its first hop,
// so comparing it with a direct RTT would favour relays unfairly. Among relay paths the cost is an
// expected delay in ms: RTT inflated by loss, plus a fixed cost for the relay hop. Hysteresis: the
// current path stays while it is alive and within 20% (+2 ms) of the best, so paths do not flap on
// noise. The next issue replaces this rule with a learned policy.
import type { NodeId } from "../identity/identity.ts";

export type Path = { kind: "direct" } | { kind: "relay"; via: NodeId };

export interface PathCandidate {
  path: Path;
  alive: boolean;
  /** Smoothed RTT of the first hop in ms (undefined before the first measurement). */
  rttMs?: number;
  /** Fraction of probes lost, 0..1. */
  loss: number;
}

export const RELAY_HOP_COST_MS = 5;
const UNMEASURED_RTT_MS = 50;
const KEEP_RATIO = 1.2;
const KEEP_SLACK_MS = 2;
export const DIRECT_LOSS_MARGIN = 0.2;

export function pathName(p: Path): string {
  return p.kind === "direct" ? "direct" : `relay:${p.via}`;
}

export function pathCost(c: PathCandidate): number {
  const rtt = c.rttMs ?? UNMEASURED_RTT_MS;
  return rtt * (1 + 10 * Math.min(1, Math.max(0, c.loss))) + (c.path.kind === "relay" ? RELAY_HOP_COST_MS : 0);
}

/** The path to use, given the candidates and the name of the path in use now (if any). */
export function choosePath(candidates: readonly PathCandidate[], current?: string): PathCandidate | undefined {
  const direct = candidates.find((c) => c.alive && c.path.kind === "direct");
  const relay = chooseAmong(candidates.filter((c) => c.path.kind === "relay"), current);
  if (direct && (!relay || direct.loss <= relay.loss + DIRECT_LOSS_MARGIN)) return direct;
  return relay ?? direct;
}

function chooseAmong(candidates: readonly PathCandidate[], current?: string): PathCandidate | undefined {
  let best: PathCandidate | undefined;
  let kept: PathCandidate | undefined;
  for (const c of candidates) {
    if (!c.alive) continue;
    if (!best || pathCost(c) < pathCost(best)) best = c;
    if (current !== undefined && pathName(c.path) === current) kept = c;
  }
  if (best && kept && kept !== best && pathCost(kept) <= pathCost(best) * KEEP_RATIO + KEEP_SLACK_MS) return kept;
  return best;
}
