// The router: carries sealed packets to any member over the best path (direct, or through 1-3 relays),
// forwards for others when this node is a relay, keeps every link probed and measured, and spreads
// discovery records by gossip. It sees links only through LinkPort, so the same code runs over werift
// in a real node and over in-memory links in the simulation (src/sim).
//
//   send(dst)  ── select: rule (choose.ts) ──▶ direct link              (inner as is)
//                  or the path policy's relay ──▶ link to a relay    (forward frame, src/route/frame.ts)
//   receive(from link) ── forward frame for us ──▶ deliver(src, inner)   (delivery reports taken here)
//                      ── forward frame for another ──▶ relay: next hop by destination node id
//                      ── hop frame ──▶ probe / probe ack / record / lookup / unreachable
//   tick()  ── probes, liveness, relay attachment, idle links, records; every second a policy round
//              (discounted UCB per destination, src/route/policy.ts) and delivery reports
//
// Relays route by node id: straight to the destination over a live link, else toward a relay that the
// destination's record says it is attached to, over at most `hops` more relays (breadth-first over the
// relay graph the relays' own records describe). The trace in the frame stops loops. docs/PROTOCOL.md
// ("Paths and relays") has the wire format; docs/PATHS.md the policy.
import { NODE_ID_BYTES, type NodeId } from "../identity/identity.ts";
import { choosePath, pathCost, pathName, type PathCandidate } from "./choose.ts";
import type { RewardWeights } from "./policy.ts";
import { POLICY_ROUND_MS, Steering, type Decision, type PolicyView, type RelayPolicy } from "./steering.ts";
import { FairShare } from "./fairness.ts";
import {
  decodeForward, encodeForward, encodeHop, FORWARD_HEADER, MAX_RELAYS, HOP_LOOKUP, HOP_MEMBER, HOP_MEMBER_LOOKUP, HOP_MISS, HOP_UNREACHABLE, HOP_PROBE, HOP_PROBE_ACK, HOP_RECORD, idBody, readId, readU32, relayed,
  TYPE_FORWARD, TYPE_HOP, TYPE_REPORT, TYPE_SIGNAL, u32, type HopKind,
} from "./frame.ts";
import { decodeRecord, encodeRecord, peekRecord, MAX_RECORD_RELAYS, RECORD_LIFETIME_MS, type DiscoveryRecord, type RecordCrypto } from "./record.ts";

/** What the router needs of a link. */
export interface RouterLink {
  readonly peer: NodeId;
  readonly state: "connecting" | "open" | "closed";
  sendPacket(b: Uint8Array): boolean;
  sendControl(b: Uint8Array): void;
  /** The largest frame the link's fast channel takes now; undefined when any size goes. */
  readonly fastMtu?: number;
}

/** How the router asks for links: the LinkManager in a node, the fabric in the simulation. */
export interface LinkPort {
  link(peer: NodeId): RouterLink | undefined;
  /** Want a link to `peer` (idempotent, retried with backoff by the port). */
  connect(peer: NodeId): void;
  disconnect(peer: NodeId, reason: string): void;
}

type Log = (level: "debug" | "info" | "warn", msg: string) => void;

export interface RouterOptions {
  self: NodeId;
  relay: { enabled: boolean; bandwidthBps: number; maxPeers?: number };
  links: LinkPort;
  /** Milliseconds since the Unix epoch, fractions welcome (records carry it; probes measure with it). */
  now(): number;
  crypto: RecordCrypto;
  /** Close links to non-relays that carried no traffic for this long. */
  idleTimeoutMs: number;
  /** How many relays an edge node stays attached to. */
  relaysWanted?: number;
  /** Ways to reach us outside the overlay (seed URLs), put in our record. */
  hints?(): string[];
  /** An end-to-end payload for us: a session packet or a signal (TYPE_SIGNAL). */
  deliver(src: NodeId, inner: Uint8Array): void;
  /** A verified record we keep (a looked-up member's, or a relay's). */
  onRecord?(r: DiscoveryRecord): void;
  /**
   * A neighbour asks which member holds an address or name (an opaque query): the answer to send back,
   * or undefined for none. The router only carries these; who may learn what is the node's call.
   */
  memberLookup?(from: NodeId, query: Uint8Array): Uint8Array | undefined;
  /** A neighbour answered one of our member lookups. */
  onMember?(from: NodeId, answer: Uint8Array): void;
  /** A link became usable: packets waiting for a path may go now. */
  onPathUp?(peer: NodeId): void;
  /** How the path policy weighs latency, loss and goodput (default DEFAULT_WEIGHTS). */
  weights?: RewardWeights;
  /** Each path-policy decision, for the decision log. */
  onDecision?(d: Decision): void;
  /** Packets to `dst` start taking another path (`from` undefined for the first). */
  onPathChange?(dst: NodeId, from: string | undefined, to: string): void;
  /** The relay-path policy: the bandit (default), or a fixed rule the simulation compares it with. */
  relayPolicy?: RelayPolicy;
  /** Randomness for the "random" rule (the simulation passes a seeded one). */
  random?(): number;
  log?: Log;
}

/** Probe every link this often; a link with nothing heard for DEAD_MS is dead; after CLOSE_DEAD_MS it is closed. */
export const PROBE_MS = 150;
export const DEAD_MS = 600;
const PROBE_TIMEOUT_MS = 1_000;
const CLOSE_DEAD_MS = 10_000;
const CONNECT_EVERY_MS = 1_000;
const LOOKUP_EVERY_MS = 1_000;
const PUBLISH_MIN_MS = 1_000;
/** A relay re-signs its record for a load change of 10 points at most this often. */
const LOAD_PUBLISH_MIN_MS = 30_000;
const LOAD_WINDOW_MS = 10_000;
const MAX_EDGE_RELAY_RECORDS = 64;
/** After a neighbour says it has no route to a node, avoid it for that node this long. */
const NO_ROUTE_MS = 2_000;
const UNREACHABLE_EVERY_MS = 250;
/** Re-choose a flow's path at most this often (liveness changes only at ticks anyway). */
const CHOICE_MS = 50;

interface LinkInfo {
  readonly openedAt: number;
  lastRx: number;
  nextProbe: number;
  probeId: number;
  readonly probes: Map<number, number>;
  rttMs?: number;
  rttVarMs: number;
  loss: number;
  alive: boolean;
  /** Times the link went silent (alive → dead). */
  failures: number;
}

interface Flow {
  lastActive: number;
  path?: string;
  lastConnect: number;
  lastLookup: number;
  /** Relays the last frame from this peer passed (empty when it came direct). */
  inTrace: NodeId[];
  /** Relays our packets passed, as the peer reported (ping). */
  outTrace: NodeId[];
  /** The last choice and when it was made: reused for CHOICE_MS so a packet costs no allocation. */
  choice?: PathCandidate;
  choiceAt: number;
}

export interface RouterStats {
  forwarded: number;
  forwardedBytes: number;
  droppedNoRoute: number;
  droppedFairness: number;
  droppedLoop: number;
  droppedNotRelay: number;
  droppedMalformed: number;
  sentDirect: number;
  sentRelayed: number;
  noPath: number;
  recordsAccepted: number;
  recordsRefused: number;
}

export interface LinkReport {
  peer: NodeId;
  relay: boolean;
  alive: boolean;
  rtt_ms: number | null;
  jitter_ms: number | null;
  loss: number;
  uptime_s: number;
  failures: number;
}

export interface PathReport extends PathCandidate {
  name: string;
  cost: number;
}

export class Router {
  readonly stats: RouterStats = {
    forwarded: 0, forwardedBytes: 0, droppedNoRoute: 0, droppedFairness: 0, droppedLoop: 0, droppedNotRelay: 0, droppedMalformed: 0,
    sentDirect: 0, sentRelayed: 0, noPath: 0, recordsAccepted: 0, recordsRefused: 0,
  };
  private readonly info = new Map<NodeId, LinkInfo>();
  private readonly flows = new Map<NodeId, Flow>();
  private readonly records = new Map<NodeId, DiscoveryRecord>();
  /** Relays announced by seeds we registered with (before their records arrive). */
  private readonly announced = new Set<NodeId>();
  private readonly fair: FairShare;
  private readonly steering: Steering;
  private readonly self: NodeId;
  private own?: DiscoveryRecord;
  private ownRelays = "";
  private publishedAt = -Infinity;
  private adjacency?: Map<NodeId, Set<NodeId>>;
  /** "dst|neighbour" → until when the neighbour said it cannot reach dst (and when we last said so). */
  private readonly noRoute = new Map<string, number>();
  private readonly toldUnreachable = new Map<string, number>();
  private readonly log: Log;

  constructor(private readonly opts: RouterOptions) {
    this.self = opts.self;
    this.fair = new FairShare(opts.relay.bandwidthBps, opts.now);
    this.steering = new Steering({ send: (dst, inner) => this.send(dst, inner), relayPolicy: opts.relayPolicy, random: opts.random, onDecision: opts.onDecision, log: (m) => this.log("info", m) });
    if (opts.weights) this.steering.weights = opts.weights;
    this.log = opts.log ?? (() => {});
  }

  get isRelayNode(): boolean {
    return this.opts.relay.enabled;
  }

  private now(): number {
    return this.opts.now();
  }

  // ── links ──────────────────────────────────────────────────────────────────────────────────────────

  /** A link to `peer` opened. */
  linked(peer: NodeId): void {
    const now = this.now();
    this.info.set(peer, { openedAt: now, lastRx: now, nextProbe: now, probeId: 1, probes: new Map(), rttVarMs: 0, loss: 0, alive: true, failures: 0 });
    this.adjacency = undefined;
    if (this.own) this.sendHop(peer, HOP_RECORD, this.own.bytes);
    // A relay tells a new relay neighbour everything it knows, and a new edge neighbour the relays.
    if (this.opts.relay.enabled) for (const r of this.records.values()) if (r.id !== peer && (r.relay || this.isRelay(peer))) this.sendHop(peer, HOP_RECORD, r.bytes);
    this.opts.onPathUp?.(peer);
  }

  /** A link to `peer` closed. */
  unlinked(peer: NodeId): void {
    if (this.info.delete(peer)) this.adjacency = undefined;
  }

  /** A seed told us it relays: attach to it. */
  addRelay(id: NodeId): void {
    if (id === this.self || this.announced.has(id)) return;
    this.announced.add(id);
    this.log("info", `relay ${id} announced by a seed`);
  }

  isRelay(id: NodeId): boolean {
    return this.announced.has(id) || this.records.get(id)?.relay === true;
  }

  private alive(peer: NodeId): boolean {
    const i = this.info.get(peer);
    return i !== undefined && i.alive && this.opts.links.link(peer)?.state === "open";
  }

  // ── sending ────────────────────────────────────────────────────────────────────────────────────────

  /** Every path to `dst` we could use now, with its measurements and cost. */
  candidates(dst: NodeId): PathCandidate[] {
    const out: PathCandidate[] = [];
    const d = this.info.get(dst);
    if (d) out.push({ path: { kind: "direct" }, alive: this.alive(dst), rttMs: d.rttMs, loss: d.loss });
    for (const [id, i] of this.info)
      if (id !== dst && this.isRelay(id)) out.push({ path: { kind: "relay", via: id }, alive: this.alive(id) && !this.avoided(dst, id), rttMs: i.rttMs, loss: i.loss });
    return out;
  }

  private avoided(dst: NodeId, via: NodeId): boolean {
    const until = this.noRoute.get(`${dst}|${via}`);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.noRoute.delete(`${dst}|${via}`);
    return false;
  }

  /** Whether any path to `dst` is live now (the same cached choice send() uses: no allocation per packet). */
  hasPath(dst: NodeId): boolean {
    return this.current(dst, this.flow(dst)) !== undefined;
  }

  /**
   * The largest end-to-end payload (session packet) that fits the fast channel of the path send() uses
   * now, or undefined when any size goes (no fast channel: the data channel fragments). On a relay path
   * room is kept for the forward header and a trace of MAX_RELAYS relays (later hops' MTUs are unknown;
   * a relay whose next link is smaller sends the frame over that link's data channel).
   */
  packetLimit(dst: NodeId): number | undefined {
    const c = this.current(dst, this.flow(dst));
    if (!c) return undefined;
    const mtu = this.opts.links.link(c.path.kind === "direct" ? dst : c.path.via)?.fastMtu;
    if (mtu === undefined) return undefined;
    return c.path.kind === "direct" ? mtu : mtu - FORWARD_HEADER - MAX_RELAYS * NODE_ID_BYTES;
  }

  /** The flow's path choice, re-made at most every CHOICE_MS or at once when its link is gone. */
  private current(dst: NodeId, f: Flow): PathCandidate | undefined {
    const now = this.now();
    const c = f.choice;
    if (c && now - f.choiceAt < CHOICE_MS && this.opts.links.link(c.path.kind === "direct" ? dst : c.path.via)?.state === "open") return c;
    f.choiceAt = now;
    return (f.choice = this.select(dst, f));
  }

  hasRelayPath(dst: NodeId): boolean {
    return this.candidates(dst).some((c) => c.alive && c.path.kind === "relay");
  }

  /** Whether traffic with `peer` was marked active within the idle timeout. */
  isActive(peer: NodeId): boolean {
    const f = this.flows.get(peer);
    return f !== undefined && this.now() - f.lastActive < this.opts.idleTimeoutMs;
  }

  private flow(dst: NodeId): Flow {
    let f = this.flows.get(dst);
    // A flow nobody marked active (only pings or handshakes so far) is idle from the start.
    if (!f) this.flows.set(dst, (f = { lastActive: -Infinity, lastConnect: -Infinity, lastLookup: -Infinity, inTrace: [], outTrace: [], choiceAt: -Infinity }));
    return f;
  }

  /** Note traffic with `peer` (IP packets, not probes): keeps its link from closing as idle. */
  active(peer: NodeId): void {
    this.flow(peer).lastActive = this.now();
  }

  /**
   * Send an end-to-end payload (session packet or signal) to `dst` over the best path now; false when
   * there is none. A relay path is used at once while a direct link is asked for in the background.
   */
  send(dst: NodeId, inner: Uint8Array): boolean {
    const f = this.flow(dst);
    const c = this.current(dst, f);
    if (!c || c.path.kind !== "direct") this.wantDirect(dst, f);
    if (!c) {
      this.stats.noPath++;
      return false;
    }
    const name = pathName(c.path);
    if (f.path !== name) {
      if (f.path) this.log("info", `path to ${dst}: ${f.path} → ${name}`);
      this.opts.onPathChange?.(dst, f.path, name);
      f.path = name;
    }
    const reliable = inner[0] !== 0xc4;
    if (c.path.kind === "direct") {
      this.stats.sentDirect++;
      return this.sendOn(dst, inner, reliable);
    }
    this.stats.sentRelayed++;
    this.steering.sent(dst, inner.length);
    return this.sendOn(c.path.via, encodeForward(dst, this.self, inner), reliable);
  }

  /**
   * The path to use: the rule (choose.ts) decides direct or not, and which relay when the policy has
   * no opinion yet; among live relay paths the path policy's choice wins. A dead choice falls back to
   * the rule at once (failover does not wait for the next policy round).
   */
  private select(dst: NodeId, f?: Flow): PathCandidate | undefined {
    const cands = this.candidates(dst);
    const rule = choosePath(cands, f?.path);
    const pick = this.steering.choice(dst);
    if (!rule || rule.path.kind === "direct" || !pick) return rule;
    return cands.find((c) => c.alive && c.path.kind === "relay" && pathName(c.path) === pick) ?? rule;
  }

  /**
   * An end-to-end payload reached us: data is counted for the source's delivery report; a delivery
   * report about our own traffic goes to steering and no further (true).
   */
  private arrived(src: NodeId, inner: Uint8Array, via: NodeId | undefined): boolean {
    if (inner[0] === TYPE_REPORT) {
      this.steering.report(src, inner);
      return true;
    }
    if (inner[0] === 0xc4) this.steering.delivered(src, via, inner.length);
    return false;
  }

  /** The path policy's weights (replaced on reload or by an outside policy). */
  get weights(): RewardWeights {
    return this.steering.weights;
  }
  set weights(w: RewardWeights) {
    this.steering.weights = w;
  }

  /** The policy's view of `dst`: its choice, indices and the last rewards (for status and the API). */
  policyReport(dst: NodeId): PolicyView | undefined {
    const f = this.flows.get(dst);
    const cands = this.candidates(dst);
    const rule = choosePath(cands, f?.path);
    const arms = cands.filter((c) => c.path.kind === "relay").map((c) => pathName(c.path));
    return this.steering.view(dst, arms, rule ? pathName(rule.path) : null);
  }

  /** Send a signal (signed envelope bytes) to `dst` through relays only: it is for setting up the direct link. */
  sendSignal(dst: NodeId, envelope: Uint8Array): boolean {
    const c = choosePath(this.candidates(dst).filter((x) => x.path.kind === "relay"));
    if (!c || c.path.kind !== "relay") return false;
    const inner = new Uint8Array(1 + envelope.length);
    inner[0] = TYPE_SIGNAL;
    inner.set(envelope, 1);
    return this.sendOn(c.path.via, encodeForward(dst, this.self, inner), true);
  }

  private wantDirect(dst: NodeId, f: Flow): void {
    const now = this.now();
    if (now - f.lastConnect < CONNECT_EVERY_MS) return;
    f.lastConnect = now;
    this.opts.links.connect(dst);
  }

  private sendOn(peer: NodeId, b: Uint8Array, reliable: boolean): boolean {
    const link = this.opts.links.link(peer);
    if (!link || link.state !== "open") return false;
    if (reliable) {
      link.sendControl(b);
      return true;
    }
    return link.sendPacket(b);
  }

  private sendHop(peer: NodeId, kind: HopKind, body: Uint8Array): void {
    const b = encodeHop(kind, body);
    // Probes go unreliable (they measure the packet path); when that queue is full, reliable beats silence.
    if (kind === HOP_PROBE || kind === HOP_PROBE_ACK) {
      if (!this.sendOn(peer, b, false)) this.sendOn(peer, b, true);
    } else this.sendOn(peer, b, true);
  }

  // ── receiving ──────────────────────────────────────────────────────────────────────────────────────

  /** Anything that arrived on the link to `peer`. Garbage is counted and dropped. */
  receive(peer: NodeId, b: Uint8Array): void {
    const i = this.info.get(peer);
    if (i) i.lastRx = this.now();
    if (b.length === 0) return;
    if (b[0] === TYPE_FORWARD) return this.onForward(peer, b);
    if (b[0] === TYPE_HOP) return this.onHop(peer, b);
    const f = this.flows.get(peer);
    if (f && f.inTrace.length) f.inTrace = [];
    if (this.arrived(peer, b, undefined)) return;
    this.opts.deliver(peer, b);
  }

  private onForward(peer: NodeId, b: Uint8Array): void {
    const f = decodeForward(b);
    if (!f) {
      this.stats.droppedMalformed++;
      return;
    }
    if (f.dst === this.self) {
      this.flow(f.src).inTrace = f.trace;
      if (this.arrived(f.src, f.inner, f.trace[0])) return;
      this.opts.deliver(f.src, f.inner);
      return;
    }
    if (!this.opts.relay.enabled) {
      this.stats.droppedNotRelay++;
      return;
    }
    // The previous hop must be who handed us the frame; we must not be on its trace already.
    const prev = f.trace.length ? f.trace[f.trace.length - 1] : f.src;
    if (prev !== peer || f.src === this.self || f.trace.includes(this.self)) {
      this.stats.droppedLoop++;
      return;
    }
    if (!this.fair.allow(f.src, b.length)) {
      this.stats.droppedFairness++;
      return;
    }
    const next = this.nextHop(f.dst, f.hops, new Set([f.src, ...f.trace]));
    if (!next) {
      this.stats.droppedNoRoute++;
      this.log("debug", `no route to ${f.dst} (hops ${f.hops}, record ${this.records.has(f.dst) ? this.records.get(f.dst)!.relays.join(",") : "none"}, from ${peer})`);
      const key = `${f.dst}|${peer}`;
      const now = this.now();
      if (now - (this.toldUnreachable.get(key) ?? -Infinity) >= UNREACHABLE_EVERY_MS) {
        this.toldUnreachable.set(key, now);
        this.sendHop(peer, HOP_UNREACHABLE, idBody(f.dst));
      }
      return;
    }
    this.stats.forwarded++;
    this.stats.forwardedBytes += b.length;
    this.sendOn(next, relayed(b, this.self, next !== f.dst), f.inner[0] !== 0xc4);
  }

  /**
   * The adjacent node to hand a frame for `dst` to: `dst` itself over a live link, else the neighbour
   * relay closest (in relay hops, then RTT) to a relay that `dst`'s record lists, at most `hops` away.
   */
  nextHop(dst: NodeId, hops: number, exclude: ReadonlySet<NodeId> = new Set()): NodeId | undefined {
    if (this.alive(dst)) return dst;
    const rec = this.records.get(dst);
    if (!rec || hops <= 0) return undefined;
    // Distance from each relay to the nearest of dst's relays, breadth-first over the relay graph.
    const adj = this.relayGraph();
    const dist = new Map<NodeId, number>();
    let frontier = rec.relays.filter((r) => r !== this.self && !exclude.has(r));
    for (const r of frontier) dist.set(r, 0);
    for (let d = 1; d < hops && frontier.length; d++) {
      const nextFrontier: NodeId[] = [];
      for (const r of frontier)
        for (const n of adj.get(r) ?? [])
          if (!dist.has(n) && n !== this.self && !exclude.has(n)) {
            dist.set(n, d);
            nextFrontier.push(n);
          }
      frontier = nextFrontier;
    }
    let best: NodeId | undefined;
    let bestKey = [Infinity, Infinity];
    for (const [id, i] of this.info) {
      const d = dist.get(id);
      if (d === undefined || !this.alive(id) || this.avoided(dst, id)) continue;
      const key = [d, i.rttMs ?? 1e6];
      if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1])) [best, bestKey] = [id, key];
    }
    return best;
  }

  /** Relay adjacency from the relays' records (both directions), rebuilt when records or links change. */
  private relayGraph(): Map<NodeId, Set<NodeId>> {
    if (this.adjacency) return this.adjacency;
    const adj = new Map<NodeId, Set<NodeId>>();
    const add = (a: NodeId, b: NodeId) => {
      if (!adj.has(a)) adj.set(a, new Set());
      adj.get(a)!.add(b);
    };
    for (const r of this.records.values())
      if (r.relay)
        for (const n of r.relays) {
          add(r.id, n);
          add(n, r.id);
        }
    return (this.adjacency = adj);
  }

  private onHop(peer: NodeId, b: Uint8Array): void {
    const body = b.subarray(2);
    switch (b[1]) {
      case HOP_PROBE:
        return this.sendHop(peer, HOP_PROBE_ACK, body);
      case HOP_PROBE_ACK: {
        const i = this.info.get(peer);
        const id = readU32(body);
        const sentAt = id === undefined ? undefined : i?.probes.get(id);
        if (!i || sentAt === undefined) return;
        i.probes.delete(id!);
        const sample = this.now() - sentAt;
        if (i.rttMs === undefined) [i.rttMs, i.rttVarMs] = [sample, sample / 2];
        else {
          i.rttVarMs = 0.75 * i.rttVarMs + 0.25 * Math.abs(i.rttMs - sample);
          i.rttMs = 0.875 * i.rttMs + 0.125 * sample;
        }
        i.loss *= 0.9;
        return;
      }
      case HOP_RECORD:
        return this.onRecord(peer, body);
      case HOP_LOOKUP: {
        const r = body.length === 10 ? this.byAddressBits(body) : this.records.get(readId(body) ?? ("" as NodeId));
        if (r) this.sendHop(peer, HOP_RECORD, r.bytes);
        else this.sendHop(peer, HOP_MISS, body);
        return;
      }
      case HOP_MEMBER_LOOKUP: {
        const answer = this.opts.memberLookup?.(peer, body);
        if (answer) this.sendHop(peer, HOP_MEMBER, answer);
        return;
      }
      case HOP_MEMBER:
        return this.opts.onMember?.(peer, body);
      case HOP_MISS:
        return;
      case HOP_UNREACHABLE: {
        const id = readId(body);
        if (id) this.noRoute.set(`${id}|${peer}`, this.now() + NO_ROUTE_MS);
        return;
      }
      default:
        this.stats.droppedMalformed++;
    }
  }

  // ── discovery records ──────────────────────────────────────────────────────────────────────────────

  /** The record we hold for `id`, if any. */
  record(id: NodeId): DiscoveryRecord | undefined {
    return this.records.get(id);
  }

  /** The seed URLs relays put in their records (for STUN when our own seeds are gone). */
  relayHints(): string[] {
    const out = new Set<string>();
    for (const r of this.records.values()) if (r.relay) for (const h of r.hints) out.add(h);
    return [...out];
  }

  get recordCount(): number {
    return this.records.size;
  }

  private onRecord(from: NodeId, b: Uint8Array): void {
    // Cheap duplicate check before the signature (gossip brings the same record from every side).
    const peek = peekRecord(b);
    if (peek) {
      const have = peek.id === this.self ? this.own : this.records.get(peek.id);
      if (have && have.issued >= peek.issued) return;
      // An edge keeps only relays' records and those of nodes it talks to.
      if (!this.opts.relay.enabled && !peek.relay && !this.flows.has(peek.id) && !this.announced.has(peek.id) && !this.addressLookups.has(peek.id.slice(0, 20))) return;
    }
    const r = decodeRecord(b, this.opts.crypto, this.now());
    if (typeof r === "string") {
      this.stats.recordsRefused++;
      this.log("debug", `record from ${from} refused: ${r}`);
      return;
    }
    if (r.id === this.self) return;
    if (!this.opts.relay.enabled && r.relay && !this.records.has(r.id) && this.relayRecordCount() >= MAX_EDGE_RELAY_RECORDS) return;
    this.stats.recordsAccepted++;
    const fresh = !this.records.has(r.id);
    this.records.set(r.id, r);
    if (r.relay) this.adjacency = undefined;
    if (fresh && r.relay) this.log("debug", `learned relay ${r.id}`);
    // A neighbour we linked to before knowing it relays: now it gets the edges' records linked() kept back
    // (else it has no route to our edges until they republish, minutes later).
    if (fresh && r.relay && this.opts.relay.enabled && this.info.has(r.id) && !this.announced.has(r.id))
      for (const x of this.records.values()) if (!x.relay && x.id !== r.id) this.sendHop(r.id, HOP_RECORD, x.bytes);
    this.opts.onRecord?.(r);
    if (!this.opts.relay.enabled) return;
    for (const peer of this.info.keys()) if (peer !== from && peer !== r.id && (r.relay || this.isRelay(peer))) this.sendHop(peer, HOP_RECORD, r.bytes);
  }

  private relayRecordCount(): number {
    let n = 0;
    for (const r of this.records.values()) if (r.relay) n++;
    return n;
  }

  private byAddressBits(bits: Uint8Array): DiscoveryRecord | undefined {
    const prefix = Buffer.from(bits).toString("hex");
    for (const r of this.records.values()) if (!r.relay && r.id.startsWith(prefix)) return r;
    return undefined;
  }

  /**
   * Ask our relays for the record of the node whose id starts with these 10 bytes (the node-id bits of
   * an overlay IPv6 address), at most once a second per address.
   */
  lookupAddress(bits: Uint8Array): void {
    const key = Buffer.from(bits).toString("hex");
    const have = this.byAddressBits(bits);
    if (have) return this.opts.onRecord?.(have);
    const now = this.now();
    if (now - (this.addressLookups.get(key) ?? -Infinity) < LOOKUP_EVERY_MS) return;
    this.addressLookups.set(key, now);
    for (const id of this.info.keys()) if (this.isRelay(id) && this.alive(id)) this.sendHop(id, HOP_LOOKUP, bits);
  }
  private readonly addressLookups = new Map<string, number>();

  /** Ask our relays which member holds an address or name (`query` is the node's), at most once a second per query. */
  lookupMember(query: Uint8Array): void {
    const key = "m" + Buffer.from(query).toString("hex");
    const now = this.now();
    if (now - (this.addressLookups.get(key) ?? -Infinity) < LOOKUP_EVERY_MS) return;
    let asked = false;
    for (const id of this.info.keys()) if (this.isRelay(id) && this.alive(id)) (this.sendHop(id, HOP_MEMBER_LOOKUP, query), (asked = true));
    if (asked) this.addressLookups.set(key, now);
  }

  /**
   * A relay passes a member lookup it cannot answer to the other relays it links to (not `except`, the
   * asker); the number asked. Relays link to every relay they know, so one hop of this reaches them all.
   */
  forwardMemberLookup(query: Uint8Array, except: NodeId): number {
    let n = 0;
    for (const id of this.info.keys()) if (id !== except && this.isRelay(id) && this.alive(id)) (this.sendHop(id, HOP_MEMBER_LOOKUP, query), n++);
    return n;
  }

  /** Hand a member lookup's answer to the neighbour that asked us for it. */
  sendMemberAnswer(to: NodeId, answer: Uint8Array): void {
    if (this.info.has(to)) this.sendHop(to, HOP_MEMBER, answer);
  }

  /** Ask our relays for `dst`'s record (its public identity), at most once a second per destination. */
  lookup(dst: NodeId): void {
    const r = this.records.get(dst);
    if (r) return this.opts.onRecord?.(r);
    const f = this.flow(dst);
    const now = this.now();
    if (now - f.lastLookup < LOOKUP_EVERY_MS) return;
    f.lastLookup = now;
    for (const id of this.info.keys()) if (this.isRelay(id) && this.alive(id)) this.sendHop(id, HOP_LOOKUP, idBody(dst));
  }

  /**
   * A relay's load in percent: the larger of its links over max_peers and, with a bandwidth cap, its
   * forwarded rate over the cap (measured over the last LOAD_WINDOW_MS).
   */
  load(now: number = this.now()): number {
    if (!this.opts.relay.enabled) return 0;
    if (now - this.loadMark.at >= LOAD_WINDOW_MS) {
      this.loadMark.bps = ((this.stats.forwardedBytes - this.loadMark.bytes) * 8) / ((now - this.loadMark.at) / 1000);
      this.loadMark.at = now;
      this.loadMark.bytes = this.stats.forwardedBytes;
    }
    const peers = this.info.size / (this.opts.relay.maxPeers ?? 64);
    const rate = this.opts.relay.bandwidthBps > 0 ? this.loadMark.bps / this.opts.relay.bandwidthBps : 0;
    return Math.min(100, Math.round(100 * Math.max(peers, rate)));
  }
  private readonly loadMark = { at: -Infinity, bytes: 0, bps: 0 };

  /** Sign and send our record when what it says changed (or it is getting old). */
  private publish(now: number): void {
    const relays = [...this.info.keys()].filter((id) => this.isRelay(id) && this.alive(id)).sort().slice(0, MAX_RECORD_RELAYS);
    const key = relays.join();
    const old = !this.own || now - this.own.issued > RECORD_LIFETIME_MS / 3;
    const load = this.load(now);
    const loadMoved = this.opts.relay.enabled && Math.abs(load - (this.own?.load ?? 0)) >= 10 && now - this.publishedAt >= LOAD_PUBLISH_MIN_MS;
    if ((key === this.ownRelays && !old && !loadMoved) || now - this.publishedAt < PUBLISH_MIN_MS) return;
    if (relays.length === 0 && !this.opts.relay.enabled) return;
    this.ownRelays = key;
    this.publishedAt = now;
    const issued = Math.max(Math.floor(now), (this.own?.issued ?? 0) + 1);
    const fields = { id: this.self, relay: this.opts.relay.enabled, load: this.opts.relay.enabled ? load : 0, relays, hints: this.opts.hints?.() ?? [], issued, expires: issued + RECORD_LIFETIME_MS };
    const bytes = encodeRecord(fields, this.opts.crypto);
    this.own = { ...fields, pub: this.opts.crypto.publicBytes, bytes };
    for (const peer of this.info.keys()) if (this.opts.relay.enabled || this.isRelay(peer)) this.sendHop(peer, HOP_RECORD, bytes);
  }

  // ── timers ─────────────────────────────────────────────────────────────────────────────────────────

  /** Run every ~100-250 ms: probes, liveness, relay attachment, idle links, records. */
  tick(): void {
    const now = this.now();
    for (const [peer, i] of this.info) {
      const link = this.opts.links.link(peer);
      if (!link || link.state === "closed") {
        this.unlinked(peer);
        continue;
      }
      if (link.state !== "open") continue;
      for (const [id, at] of i.probes)
        if (now - at > PROBE_TIMEOUT_MS) {
          i.probes.delete(id);
          i.loss = 0.9 * i.loss + 0.1;
        }
      if (now >= i.nextProbe) {
        i.nextProbe = now + PROBE_MS;
        const id = i.probeId++ >>> 0;
        i.probes.set(id, now);
        this.sendHop(peer, HOP_PROBE, u32(id));
      }
      const alive = now - i.lastRx < DEAD_MS;
      if (alive !== i.alive) {
        i.alive = alive;
        if (!alive) i.failures++;
        this.adjacency = undefined;
        this.log(alive ? "info" : "warn", `link to ${peer} ${alive ? "answers again" : `silent for ${now - i.lastRx} ms: paths through it are dead`}`);
        if (alive) this.opts.onPathUp?.(peer);
      }
      if (now - i.lastRx > CLOSE_DEAD_MS) {
        this.opts.links.disconnect(peer, "no answer to probes");
        this.unlinked(peer);
      }
    }
    this.attachRelays();
    if (now - this.lastPolicyRound >= POLICY_ROUND_MS) {
      this.lastPolicyRound = now;
      this.steering.sendReports();
      for (const [dst, f] of this.flows)
        if (now - f.lastActive < this.opts.idleTimeoutMs) this.steering.round(now, dst, this.candidates(dst).filter((c) => c.alive && c.path.kind === "relay"), f.path);
    }
    this.closeIdle(now);
    this.expireRecords(now);
    this.publish(now);
  }

  /**
   * Keep links to our relays. A relay links to every relay it knows. An edge keeps `relaysWanted` live
   * relay links; while it has fewer it tries that many more, the least recently tried first (seeds' relays
   * first among equals) (the link port's backoff spaces the retries).
   */
  private attachRelays(): void {
    const known = new Set<NodeId>(this.announced);
    for (const r of this.records.values()) if (r.relay) known.add(r.id);
    known.delete(this.self);
    if (this.opts.relay.enabled) {
      for (const r of known) if (!this.alive(r)) this.opts.links.connect(r);
      return;
    }
    const want = this.opts.relaysWanted ?? 2;
    let live = 0;
    for (const r of known) if (this.alive(r)) live++;
    if (live >= want) return;
    const now = this.now();
    const tries = [...known]
      .filter((r) => !this.alive(r))
      .sort((a, b) => (this.tried.get(a) ?? 0) - (this.tried.get(b) ?? 0) || Number(this.announced.has(b)) - Number(this.announced.has(a)));
    for (const r of tries.slice(0, want - live)) {
      this.tried.set(r, now);
      this.opts.links.connect(r);
    }
  }
  private readonly tried = new Map<NodeId, number>();
  private lastPolicyRound = -Infinity;

  private closeIdle(now: number): void {
    const idle = this.opts.idleTimeoutMs;
    for (const [peer, f] of this.flows) {
      // A flow with a lookup out stays until the answer can come: an edge takes a non-relay record only for a flow it has.
      if (now - f.lastActive < idle || now - f.lastLookup < 10 * LOOKUP_EVERY_MS) continue;
      this.flows.delete(peer);
      this.steering.forget(peer);
      const i = this.info.get(peer);
      if (i && f.lastActive > -Infinity && !this.opts.relay.enabled && !this.isRelay(peer)) {
        this.log("info", `link to ${peer} idle for ${Math.round((now - f.lastActive) / 1000)} s: closing it`);
        this.opts.links.disconnect(peer, "idle");
        this.unlinked(peer);
      }
      const r = this.records.get(peer);
      if (r && !r.relay && !this.opts.relay.enabled) this.records.delete(peer);
    }
    // A link nobody has sent on since it opened (the peer linked to us) idles out the same way.
    if (this.opts.relay.enabled) return;
    for (const [peer, i] of this.info)
      if (!this.flows.has(peer) && !this.isRelay(peer) && now - i.openedAt > idle) {
        this.log("info", `link to ${peer} unused for ${Math.round((now - i.openedAt) / 1000)} s: closing it`);
        this.opts.links.disconnect(peer, "idle");
        this.unlinked(peer);
      }
  }

  private expireRecords(now: number): void {
    for (const [k, until] of this.noRoute) if (until <= now) this.noRoute.delete(k);
    for (const [k, at] of this.toldUnreachable) if (now - at > NO_ROUTE_MS) this.toldUnreachable.delete(k);
    for (const [k, at] of this.addressLookups) if (now - at > 10 * LOOKUP_EVERY_MS) this.addressLookups.delete(k);
    for (const [id, r] of this.records)
      if (r.expires <= now) {
        this.records.delete(id);
        this.adjacency = undefined;
      }
  }

  // ── status ─────────────────────────────────────────────────────────────────────────────────────────

  /** The path packets to `dst` take now, hop by hop: "direct", or "relay:<id>" per relay; null if none. */
  pathTo(dst: NodeId): string | null {
    const f = this.flows.get(dst);
    const c = this.select(dst, f);
    if (!c) return null;
    if (c.path.kind === "direct") return "direct";
    const via = c.path.via;
    const trace = f?.outTrace.length && f.outTrace[0] === via ? f.outTrace : [via];
    return trace.map((r) => `relay:${r}`).join(" ");
  }

  /** Relays the last frame from `src` passed ([] when it came direct or we have not heard from it). */
  traceFrom(src: NodeId): NodeId[] {
    return this.flows.get(src)?.inTrace ?? [];
  }

  /** What `dst` reported our packets passed (from a pong). */
  setTraceTo(dst: NodeId, trace: NodeId[]): void {
    this.flow(dst).outTrace = trace;
  }

  /** Every path to `dst` with its measurements, for status and the API. */
  report(dst: NodeId): PathReport[] {
    return this.candidates(dst).map((c) => ({ ...c, name: pathName(c.path), cost: Math.round(pathCost(c) * 1000) / 1000 }));
  }

  /** Links and their measurements: smoothed RTT and its mean deviation (jitter), loss, uptime, failures. */
  linksReport(): LinkReport[] {
    const now = this.now();
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    return [...this.info].map(([peer, i]) => ({
      peer,
      relay: this.isRelay(peer),
      alive: this.alive(peer),
      rtt_ms: i.rttMs === undefined ? null : r3(i.rttMs),
      jitter_ms: i.rttMs === undefined ? null : r3(i.rttVarMs),
      loss: r3(i.loss),
      uptime_s: Math.round((now - i.openedAt) / 1000),
      failures: i.failures,
    }));
  }

  get flowCount(): number {
    return this.flows.size;
  }

  get linkCount(): number {
    return this.info.size;
  }

  get sources(): number {
    return this.fair.sources;
  }
}
