// The relay simulation: hundreds of nodes running the real Router over in-memory links and a simulated
// clock, with relays failing at random. Reports delivery ratio, time to reroute and gossip convergence.
//
// Topology: REGIONS regions of relays; relays in a region all link; relay k of a region also links to
// relay k of every other region (so any relay reaches any other in at most 2 relay hops). Edge nodes
// sit behind NATs: each links only to relays of its own region (it is told of two, and learns the rest
// by gossip); a fraction are "open" and may also link directly to each other. Flows between random
// edge pairs send a packet every FLOW_INTERVAL_MS; relays are killed at random times after warm-up.
import type { NodeId } from "../identity/identity.ts";
import { Router } from "../route/router.ts";
import { TYPE_DATA } from "../route/frame.ts";
import { peekRecord } from "../route/record.ts";
import { rng, SimClock } from "./clock.ts";
import { Fabric } from "./fabric.ts";
import { simRecordCrypto } from "./crypto.ts";

export interface SimOptions {
  seed: number;
  nodes: number;
  regions: number;
  relaysPerRegion: number;
  flows: number;
  durationS: number;
  warmupS: number;
  failures: number;
  openEdges: number;
  /** Loss on every unreliable message, 0..1. */
  loss: number;
}

export const DEFAULT_SIM: SimOptions = { seed: 1, nodes: 300, regions: 5, relaysPerRegion: 6, flows: 100, durationS: 60, warmupS: 10, failures: 4, openEdges: 0.2, loss: 0.01 };

const FLOW_INTERVAL_MS = 100;
const TICK_MS = 100;

export interface SimResult {
  options: SimOptions;
  relays: number;
  edges: number;
  sent: number;
  delivered: number;
  deliveryRatio: number;
  /** Per failure-affected flow: time from the relay's death to the first packet through again (ms). */
  rerouteMs: { count: number; unrecovered: number; median: number; p95: number; max: number };
  /** Time for an edge's record to reach every live relay (ms), over the records published after warm-up. */
  gossipMs: { count: number; converged: number; median: number; p95: number; max: number };
  direct: number;
  relayed: number;
  forwarded: number;
  /** Why packets were not sent or forwarded: no path at the sender, no route / a loop / not a relay at a hop. */
  drops: { noPath: number; noRoute: number; loop: number; notRelay: number };
  messages: number;
  linksAtEnd: number;
  maxLinksPerEdge: number;
  /** What an edge holds: records (relays' and its peers') and flows; bounded by its peers, not the network. */
  maxRecordsPerEdge: number;
  maxFlowsPerEdge: number;
  killed: NodeId[];
  wallMs: number;
}

function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export function runSimulation(partial: Partial<SimOptions> = {}): SimResult {
  const o = { ...DEFAULT_SIM, ...partial };
  const wallStart = performance.now();
  const random = rng(o.seed);
  const clock = new SimClock();
  const id = (i: number) => i.toString(16).padStart(32, "0") as NodeId;
  const relayCount = o.regions * o.relaysPerRegion;
  const edgeCount = o.nodes - relayCount;
  const region = new Map<NodeId, number>();
  const slot = new Map<NodeId, number>();
  const relays: NodeId[] = [], edges: NodeId[] = [];
  const open = new Set<NodeId>();
  for (let i = 0; i < relayCount; i++) {
    const r = id(i + 1);
    relays.push(r);
    region.set(r, Math.floor(i / o.relaysPerRegion));
    slot.set(r, i % o.relaysPerRegion);
  }
  for (let i = 0; i < edgeCount; i++) {
    const e = id(0x10000 + i);
    edges.push(e);
    region.set(e, i % o.regions);
    if (random() < o.openEdges) open.add(e);
  }
  const isRelay = (n: NodeId) => slot.has(n);
  const canLink = (a: NodeId, b: NodeId) => {
    if (isRelay(a) && isRelay(b)) return region.get(a) === region.get(b) || slot.get(a) === slot.get(b);
    if (isRelay(a) !== isRelay(b)) return region.get(a) === region.get(b);
    return open.has(a) && open.has(b);
  };
  const delayMs = (a: NodeId, b: NodeId) => (isRelay(a) && isRelay(b) ? (region.get(a) === region.get(b) ? 3 : 20) : isRelay(a) || isRelay(b) ? 5 : 15) + random();
  const fabric = new Fabric({ clock, random, canLink, delayMs, loss: () => o.loss });

  // Deliveries: flow index and sequence number ride in the payload.
  const sentAt: Map<number, number>[] = [];
  const got: Set<number>[] = [];
  const routers = new Map<NodeId, Router>();
  // Gossip: when each relay first held each (edge, issued) record version.
  const published = new Map<string, { at: number; have: number }>();
  const watchFrom = clock.start + o.warmupS * 1000;
  for (const n of [...relays, ...edges]) {
    const crypto = simRecordCrypto(n);
    if (!isRelay(n)) {
      // Note when each edge record version is signed (published), to time its spread to the relays.
      const sign = crypto.sign;
      crypto.sign = (body) => {
        if (clock.now >= watchFrom) published.set(`${n}@${peekRecord(body)!.issued}`, { at: clock.now, have: 0 });
        return sign(body);
      };
    }
    const r = new Router({
      self: n,
      relay: { enabled: isRelay(n), bandwidthBps: 0 },
      links: fabric.port(n),
      now: () => clock.now,
      crypto,
      idleTimeoutMs: 60_000,
      random,
      log: process.env.SIM_LOG ? (level, msg) => console.log(`${(clock.elapsed).toFixed(3)} ${n.slice(-5)} ${level} ${msg}`) : undefined,
      deliver: (src, inner) => {
        routers.get(n)!.active(src);
        const v = new DataView(inner.buffer, inner.byteOffset, inner.length);
        got[v.getUint32(1)]?.add(v.getUint32(5));
      },
      onRecord: (rec) => {
        if (!isRelay(n) || rec.relay) return;
        const p = published.get(`${rec.id}@${rec.issued}`);
        if (p) p.have++;
        if (p && p.have === relays.filter((x) => fabric.isUp(x)).length) published.set(`${rec.id}@${rec.issued}`, { ...p, have: Infinity, at: clock.now - p.at });
      },
    });
    routers.set(n, r);
    fabric.add(n, r);
    clock.every(TICK_MS, () => fabric.isUp(n) && r.tick(), 1 + Math.floor(random() * TICK_MS));
  }
  // Seeds: each edge is told of two distinct relays of its region (a seed announces the relays it knows,
  // never one twice); each relay of the relays it can link to.
  for (const e of edges) {
    const mine = relays.filter((r) => region.get(r) === region.get(e));
    const first = Math.floor(random() * mine.length);
    const second = (first + 1 + Math.floor(random() * (mine.length - 1))) % mine.length;
    for (const k of [first, second]) routers.get(e)!.addRelay(mine[k]);
  }
  for (const r of relays) for (const x of relays) if (x !== r && canLink(r, x)) routers.get(r)!.addRelay(x);
  // Flows.
  const flows: { src: NodeId; dst: NodeId }[] = [];
  while (flows.length < o.flows) {
    const src = edges[Math.floor(random() * edges.length)], dst = edges[Math.floor(random() * edges.length)];
    if (src !== dst) flows.push({ src, dst });
  }
  flows.forEach((f, i) => {
    sentAt.push(new Map());
    got.push(new Set());
    let seq = 0;
    clock.every(FLOW_INTERVAL_MS, () => {
      if (clock.now < watchFrom || !fabric.isUp(f.src) || !fabric.isUp(f.dst)) return;
      const p = new Uint8Array(64);
      p[0] = TYPE_DATA;
      const v = new DataView(p.buffer);
      v.setUint32(1, i);
      v.setUint32(5, seq);
      sentAt[i].set(seq++, clock.now);
      routers.get(f.src)!.active(f.dst);
      routers.get(f.src)!.send(f.dst, p);
    }, 1 + Math.floor(random() * FLOW_INTERVAL_MS));
  });

  // Failures: relays killed at random times between warm-up + 5 s and the end - 8 s.
  const killed: NodeId[] = [];
  const failures: number[] = [];
  for (let k = 0; k < o.failures; k++) {
    const at = watchFrom + 5000 + random() * Math.max(1, (o.durationS - o.warmupS - 13) * 1000);
    clock.after(at - clock.now, () => {
      const alive = relays.filter((r) => fabric.isUp(r));
      const victim = alive[Math.floor(random() * alive.length)];
      fabric.kill(victim);
      killed.push(victim);
      failures.push(clock.now);
    });
  }

  clock.runUntil(clock.start + o.durationS * 1000 + 1000);

  // Delivery ratio over packets sent up to 1 s before the end (later ones may still be in flight).
  const end = clock.start + o.durationS * 1000;
  let sent = 0, delivered = 0;
  flows.forEach((_, i) => {
    for (const [seq, at] of sentAt[i]) {
      if (at > end) continue;
      sent++;
      if (got[i].has(seq)) delivered++;
    }
  });
  // Reroute: for each failure, the flows whose packets stopped getting through within 1 s of it (two or
  // more lost in a row, not one random loss); the time from the failure to the first packet delivered
  // after that run of losses. (Later random losses on the new path are not part of the outage.)
  const reroutes: number[] = [];
  let unrecovered = 0;
  for (const tf of failures)
    flows.forEach((_, i) => {
      const seqs = [...sentAt[i]].filter(([, at]) => at >= tf - 200 && at <= tf + 10_000);
      const first = seqs.findIndex(([seq, at]) => at <= tf + 1000 && !got[i].has(seq));
      if (first < 0) return;
      let k = first;
      while (k < seqs.length && !got[i].has(seqs[k][0])) k++;
      if (k - first < 2) return;
      if (k >= seqs.length) unrecovered++;
      else reroutes.push(seqs[k][1] - tf);
    });
  const gossip: number[] = [];
  let watched = 0;
  for (const p of published.values()) {
    watched++;
    if (p.have === Infinity) gossip.push(p.at);
  }
  let maxLinksPerEdge = 0, maxRecordsPerEdge = 0, maxFlowsPerEdge = 0;
  for (const e of edges) {
    const r = routers.get(e)!;
    maxLinksPerEdge = Math.max(maxLinksPerEdge, r.linkCount);
    maxRecordsPerEdge = Math.max(maxRecordsPerEdge, r.recordCount);
    maxFlowsPerEdge = Math.max(maxFlowsPerEdge, r.flowCount);
  }
  let direct = 0, relayed = 0, forwarded = 0;
  const drops = { noPath: 0, noRoute: 0, loop: 0, notRelay: 0 };
  for (const r of routers.values()) {
    direct += r.stats.sentDirect;
    relayed += r.stats.sentRelayed;
    forwarded += r.stats.forwarded;
    drops.noPath += r.stats.noPath;
    drops.noRoute += r.stats.droppedNoRoute;
    drops.loop += r.stats.droppedLoop;
    drops.notRelay += r.stats.droppedNotRelay;
  }
  return {
    options: o,
    relays: relayCount,
    edges: edgeCount,
    sent,
    delivered,
    deliveryRatio: sent ? delivered / sent : 0,
    rerouteMs: { count: reroutes.length, unrecovered, median: quantile(reroutes, 0.5), p95: quantile(reroutes, 0.95), max: reroutes.length ? Math.max(...reroutes) : NaN },
    gossipMs: { count: watched, converged: gossip.length, median: quantile(gossip, 0.5), p95: quantile(gossip, 0.95), max: gossip.length ? Math.max(...gossip) : NaN },
    direct,
    relayed,
    forwarded,
    drops,
    messages: fabric.messages,
    linksAtEnd: fabric.linkCount(),
    maxLinksPerEdge,
    maxRecordsPerEdge,
    maxFlowsPerEdge,
    killed,
    wallMs: Math.round(performance.now() - wallStart),
  };
}

if (import.meta.main) {
  const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")).map(([k, v]) => [k, Number(v)]));
  const r = runSimulation(args);
  console.log(JSON.stringify(r, null, 2));
}
