// The path policy in the packet-level simulation: the real Router (probes, path choice, policy rounds)
// over in-memory links whose delay, loss and capacity change over time, against fixed relay rules run
// by the same Router. A sends a steady stream to B through one of the relays; we measure what B gets.
//
// Topology: edges A and B, relays R0..Rk-1; A and B each link every relay, never each other. Relay i's
// quality at time t applies to both of its legs: one-way delay rtt/4 per leg (so the path's RTT is
// rtt), loss split evenly over the two legs, capacity on each leg.
import type { NodeId } from "../identity/identity.ts";
import { reward, type RewardWeights } from "../route/policy.ts";
import { Router } from "../route/router.ts";
import { TYPE_DATA } from "../route/frame.ts";
import type { RelayPolicy } from "../route/steering.ts";
import { rng, SimClock } from "./clock.ts";
import { Fabric } from "./fabric.ts";
import { simRecordCrypto } from "./crypto.ts";
import { SCENARIOS, type Quality, type Scenario } from "./policies.ts";

const PACKET_BYTES = 1250;
const PACKETS_PER_S = 400; // 4 Mbit/s offered
const SCALE_BPS = 1 / 20; // capacities scaled down 20× so the 4 Mbit/s stream can feel them

export interface PathSimResult {
  policy: RelayPolicy;
  /** Σ over seconds of (best relay's true reward − true reward of the relay that carried most packets). */
  regret: number;
  meanDelayMs: number;
  goodputMbps: number;
  delivered: number;
  switches: number;
}

export function runPathSim(s: Scenario, policy: RelayPolicy, seed = 1, seconds = Math.min(s.rounds, 240)): PathSimResult {
  const clock = new SimClock();
  const random = rng(seed);
  const id = (n: string) => Buffer.from(n.padEnd(16, ".")).toString("hex") as NodeId;
  const relays = s.relays.map((_, i) => id(`R${i}`));
  const A = id("A"), B = id("B");
  const t = () => Math.floor((clock.now - clock.start) / 1000);
  const q = (x: NodeId, y: NodeId): Quality | undefined => {
    const i = relays.indexOf(x) >= 0 ? relays.indexOf(x) : relays.indexOf(y);
    return i < 0 ? undefined : s.relays[i](t());
  };
  const fabric = new Fabric({
    clock,
    random,
    canLink: (x, y) => (relays.includes(x) || relays.includes(y)) && !(relays.includes(x) && relays.includes(y)),
    delayMs: (x, y) => (q(x, y)?.rttMs ?? 10) / 4 + random() * 0.5,
    loss: (x, y) => 1 - Math.sqrt(1 - Math.min(1, q(x, y)?.loss ?? 0)),
    capacityBps: (x, y) => (q(x, y) ? q(x, y)!.capacityBps * SCALE_BPS : undefined),
  });
  const sentAt = new Map<number, number>();
  let delivered = 0, delaySum = 0;
  const carriedBy = new Map<number, Map<string, number>>(); // second → path → packets
  const routers = new Map<NodeId, Router>();
  for (const n of [A, B, ...relays]) {
    const r = new Router({
      self: n,
      relay: { enabled: relays.includes(n), bandwidthBps: 0 },
      links: fabric.port(n),
      now: () => clock.now,
      crypto: simRecordCrypto(n),
      idleTimeoutMs: 60_000,
      weights: s.weights,
      relayPolicy: policy,
      random,
      // Edges keep every relay: the scenario is about choosing among them.
      relaysWanted: relays.length,
      onDecision: process.env.PATHSIM_LOG && n === A ? (d) => console.log(JSON.stringify({ r: d.round, c: d.choice?.slice(0, 12), cands: d.candidates.map((x) => [x.path.slice(0, 12), x.rtt_ms, x.loss, Math.round(x.goodput_bps / 1e3), x.reward, x.index]) })) : undefined,
      deliver: (src, inner) => {
        if (n !== B) return;
        routers.get(B)!.active(src);
        const seq = new DataView(inner.buffer, inner.byteOffset).getUint32(1);
        const at = sentAt.get(seq);
        if (at === undefined) return;
        sentAt.delete(seq);
        delivered++;
        delaySum += clock.now - at;
      },
    });
    routers.set(n, r);
    fabric.add(n, r);
    clock.every(100, () => r.tick(), 1 + Math.floor(random() * 100));
  }
  for (const r of relays) {
    routers.get(A)!.addRelay(r);
    routers.get(B)!.addRelay(r);
  }
  const a = routers.get(A)!;
  const warmup = 3000;
  let seq = 0;
  clock.every(1000 / PACKETS_PER_S, () => {
    if (clock.now - clock.start < warmup) return;
    const p = new Uint8Array(PACKET_BYTES);
    p[0] = TYPE_DATA;
    new DataView(p.buffer).setUint32(1, seq);
    sentAt.set(seq++, clock.now);
    a.active(B);
    a.send(B, p);
    const path = a.pathTo(B) ?? "none";
    const sec = t();
    if (!carriedBy.has(sec)) carriedBy.set(sec, new Map());
    carriedBy.get(sec)!.set(path, (carriedBy.get(sec)!.get(path) ?? 0) + 1);
  });
  clock.runUntil(clock.start + warmup + seconds * 1000);
  let regret = 0, switches = 0, prev = "";
  for (const [sec, paths] of carriedBy) {
    const truth = s.relays.map((f) => f(sec));
    const rewards = truth.map((x) => reward({ rttMs: x.rttMs, loss: x.loss, goodputBps: x.capacityBps * (1 - x.loss) }, s.weights as RewardWeights));
    const used = [...paths].sort((x, y) => y[1] - x[1])[0][0];
    const i = relays.findIndex((r) => used === `relay:${r}`);
    regret += Math.max(...rewards) - (i >= 0 ? rewards[i] : 0);
    if (prev && used !== prev) switches++;
    prev = used;
  }
  return {
    policy,
    regret: Math.round(regret * 10) / 10,
    meanDelayMs: delivered ? Math.round((delaySum / delivered) * 10) / 10 : NaN,
    goodputMbps: Math.round(((delivered * PACKET_BYTES * 8) / seconds / 1e6) * 100) / 100,
    delivered,
    switches,
  };
}

export const RELAY_POLICIES: RelayPolicy[] = ["discounted-ucb", "lowest-rtt", "random", "round-robin"];

if (import.meta.main) {
  for (const s of SCENARIOS) {
    console.log(`\n${s.name} (packet level, ${Math.min(s.rounds, 240)} s)`);
    console.log("policy            regret   delay ms   goodput Mbit/s   switches");
    for (const p of RELAY_POLICIES) {
      const r = runPathSim(s, p);
      console.log(`${p.padEnd(16)} ${String(r.regret).padStart(7)} ${String(r.meanDelayMs).padStart(10)} ${String(r.goodputMbps).padStart(16)} ${String(r.switches).padStart(10)}`);
    }
  }
}
