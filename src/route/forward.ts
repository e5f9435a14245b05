// Relay forwarding: a forward frame for another node, passed one hop on when this node relays.
//
//   frame for another ── not a relay? drop ── previous hop ≠ the link it came on, or we are on its
//   trace? drop (loops) ── over the source's fair share? drop ── next hop (by destination node id):
//   the destination over a live link, else the neighbour relay nearest a relay the destination's
//   record lists ── append our id to the trace (relayed(), frame.ts) ── send on the next hop's link
//   (the channel the inner packet rides, frame.ts). No next hop: HOP_UNREACHABLE back to the sender's
//   link (at most every UNREACHABLE_EVERY_MS), which then avoids us for that destination a while.
import type { NodeId } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import type { Discovery } from "./discovery.ts";
import { FairShare } from "./fairness.ts";
import { HOP_UNREACHABLE, idBody, readId, relayed, relayedHead, type Forward, type Framing, type HopKind } from "./frame.ts";
import type { LinkHealth } from "./linkhealth.ts";
import type { RouterStats } from "./router.ts";

/** After a neighbour says it has no route to a node, avoid it for that node this long. */
const NO_ROUTE_MS = 2_000;
const UNREACHABLE_EVERY_MS = 250;
/**
 * A destination we hold no record of is asked for from our relays at most this often, and this many
 * destinations a second in all (a neighbour's frames to made-up ids cost at most that many lookups).
 */
const ASK_EVERY_MS = 1_000, ASKS_PER_SECOND = 16;
const LOAD_WINDOW_MS = 10_000;

export interface ForwarderOptions {
  self: NodeId;
  relay: { enabled: boolean; bandwidthBps: number; maxPeers?: number };
  now(): number;
  health: LinkHealth;
  discovery: Discovery;
  stats: RouterStats;
  /** Send a frame on the link to `peer` (the channel follows the frame, frame.ts). */
  sendFrame(peer: NodeId, b: Uint8Array): boolean;
  /** Send frames on the link to `peer`, each framing.head ‖ frame[framing.skip..], as one batch. */
  sendFrames?(peer: NodeId, frames: Uint8Array[], framing: Framing): void;
  sendHop(peer: NodeId, kind: HopKind, body: Uint8Array): void;
  log: Log;
}

export class Forwarder {
  // State, owned by the Router that made this (every call comes from its event loop):
  /** Per-source fair share of the relay's bandwidth cap. */
  private readonly fair: FairShare;
  /** "dst|neighbour" → until when the neighbour said it cannot reach dst. */
  private readonly noRoute = new Map<string, number>();
  /** "dst|neighbour" → when we last told the neighbour we cannot reach dst. */
  private readonly toldUnreachable = new Map<string, number>();
  /** Destinations without a record we asked our relays for, and when; this second's count. */
  private readonly askedFor = new Map<NodeId, number>();
  private asks = { second: -1, n: 0 };
  /** Forwarded bytes at the start of the load window, and the rate over the last one. */
  private readonly loadMark = { at: -Infinity, bytes: 0, bps: 0 };

  constructor(private readonly opts: ForwarderOptions) {
    this.fair = new FairShare(opts.relay.bandwidthBps, opts.now);
  }

  /** A forward frame `f` (bytes `b`) for another node arrived on the link to `peer`. */
  forward(peer: NodeId, b: Uint8Array, f: Forward): void {
    this.forwardRun(peer, [b], f);
  }

  /**
   * No record of `dst`: ask our relays for it (a member of a relay we link to whose record has not
   * reached us — passed on while that relay's own record was still being checked, say — is otherwise
   * unreachable through us until it renews its record, minutes later).
   */
  private askFor(dst: NodeId, now: number): void {
    if (now - (this.askedFor.get(dst) ?? -Infinity) < ASK_EVERY_MS) return;
    const second = Math.floor(now / 1000);
    if (this.asks.second !== second) this.asks = { second, n: 0 };
    if (this.asks.n >= ASKS_PER_SECOND) return;
    this.asks.n++;
    if (this.askedFor.size >= 4 * ASKS_PER_SECOND) for (const [id, at] of this.askedFor) if (now - at >= ASK_EVERY_MS) this.askedFor.delete(id);
    this.askedFor.set(dst, now);
    this.opts.discovery.ask(idBody(dst));
  }

  /**
   * Forward frames `bs` that arrived together on the link to `peer` and share their header (source,
   * destination, trace, hops, inner type): `f`, decoded from the first. The checks and the next hop
   * are made once for the run, the fair share is charged per frame; the run leaves as one batch
   * (sendFrames: the new header once, each frame copied once, by the link).
   */
  forwardRun(peer: NodeId, bs: Uint8Array[], f: Forward): void {
    const { stats, self } = this.opts;
    if (!this.opts.relay.enabled) {
      stats.droppedNotRelay += bs.length;
      return;
    }
    // The previous hop must be who handed us the frame; we must not be on its trace already.
    const prev = f.trace.length ? f.trace[f.trace.length - 1] : f.src;
    if (prev !== peer || f.src === self || f.trace.includes(self)) {
      stats.droppedLoop += bs.length;
      return;
    }
    // Fair shares per link: the claimed source is only the previous hop's word (a relay or a forged
    // trace could name any), but the link it came in on is authenticated; with no trace they are one.
    let pass = bs;
    for (let i = 0; i < bs.length; i++) {
      if (this.fair.allow(peer, bs[i].length)) {
        if (pass !== bs) pass.push(bs[i]);
        continue;
      }
      stats.droppedFairness++;
      if (pass === bs) pass = bs.slice(0, i);
    }
    if (pass.length === 0) return;
    const next = this.nextHop(f.dst, f.hops, new Set([f.src, ...f.trace]));
    if (!next) {
      stats.droppedNoRoute += pass.length;
      const rec = this.opts.discovery.record(f.dst);
      this.opts.log("debug", `no route to ${f.dst} (hops ${f.hops}, record ${rec ? rec.relays.join(",") : "none"}, from ${peer})`);
      const key = `${f.dst}|${peer}`;
      const now = this.opts.now();
      if (!rec) this.askFor(f.dst, now);
      if (now - (this.toldUnreachable.get(key) ?? -Infinity) >= UNREACHABLE_EVERY_MS) {
        this.toldUnreachable.set(key, now);
        this.opts.sendHop(peer, HOP_UNREACHABLE, idBody(f.dst));
      }
      return;
    }
    stats.forwarded += pass.length;
    for (const b of pass) stats.forwardedBytes += b.length;
    if (pass.length === 1 || !this.opts.sendFrames) for (const b of pass) this.opts.sendFrame(next, relayed(b, self, next !== f.dst));
    else this.opts.sendFrames(next, pass, { head: relayedHead(pass[0], self, next !== f.dst), skip: bs[0].length - f.inner.length });
  }

  /**
   * The adjacent node to hand a frame for `dst` to: `dst` itself over a live link, else the neighbour
   * relay closest (in relay hops, then RTT) to a relay that `dst`'s record lists, at most `hops` away.
   */
  nextHop(dst: NodeId, hops: number, exclude: ReadonlySet<NodeId> = new Set()): NodeId | undefined {
    const { health, self } = this.opts;
    if (health.alive(dst)) return dst;
    const rec = this.opts.discovery.record(dst);
    if (!rec || hops <= 0) return undefined;
    // Distance from each relay to the nearest of dst's relays, breadth-first over the relay graph.
    const adj = this.opts.discovery.relayGraph();
    const dist = new Map<NodeId, number>();
    let frontier = rec.relays.filter((r) => r !== self && !exclude.has(r));
    for (const r of frontier) dist.set(r, 0);
    for (let d = 1; d < hops && frontier.length; d++) {
      const nextFrontier: NodeId[] = [];
      for (const r of frontier)
        for (const n of adj.get(r) ?? [])
          if (!dist.has(n) && n !== self && !exclude.has(n)) {
            dist.set(n, d);
            nextFrontier.push(n);
          }
      frontier = nextFrontier;
    }
    let best: NodeId | undefined;
    let bestKey = [Infinity, Infinity];
    for (const [id, i] of health.entries()) {
      const d = dist.get(id);
      if (d === undefined || !health.alive(id) || this.avoided(dst, id)) continue;
      const key = [d, i.rttMs ?? 1e6];
      if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1])) [best, bestKey] = [id, key];
    }
    return best;
  }

  /** A neighbour said it has no route to a node (HOP_UNREACHABLE): avoid it for that node a while. */
  onUnreachable(peer: NodeId, body: Uint8Array): void {
    const id = readId(body);
    if (id) this.noRoute.set(`${id}|${peer}`, this.opts.now() + NO_ROUTE_MS);
  }

  /** Whether `via` said lately that it cannot reach `dst`. */
  avoided(dst: NodeId, via: NodeId): boolean {
    const until = this.noRoute.get(`${dst}|${via}`);
    if (until === undefined) return false;
    if (until > this.opts.now()) return true;
    this.noRoute.delete(`${dst}|${via}`);
    return false;
  }

  /**
   * A relay's load in percent: the larger of its links over max_peers and, with a bandwidth cap, its
   * forwarded rate over the cap (measured over the last LOAD_WINDOW_MS).
   */
  load(now: number = this.opts.now()): number {
    const { relay, stats } = this.opts;
    if (!relay.enabled) return 0;
    if (now - this.loadMark.at >= LOAD_WINDOW_MS) {
      this.loadMark.bps = ((stats.forwardedBytes - this.loadMark.bytes) * 8) / ((now - this.loadMark.at) / 1000);
      this.loadMark.at = now;
      this.loadMark.bytes = stats.forwardedBytes;
    }
    const peers = this.opts.health.size / (relay.maxPeers ?? 64);
    const rate = relay.bandwidthBps > 0 ? this.loadMark.bps / relay.bandwidthBps : 0;
    return Math.min(100, Math.round(100 * Math.max(peers, rate)));
  }

  /** Forget what has timed out. */
  expire(now: number): void {
    for (const [k, until] of this.noRoute) if (until <= now) this.noRoute.delete(k);
    for (const [k, at] of this.toldUnreachable) if (now - at > NO_ROUTE_MS) this.toldUnreachable.delete(k);
  }

  /** Sources the fair share tracks now. */
  get sources(): number {
    return this.fair.sources;
  }
}
