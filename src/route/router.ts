// The router: carries sealed packets to any member over the best path (direct, or through 1-3 relays).
// This file is sending and path selection; the other jobs sit beside it, each with its own state:
//   ./linkhealth.ts  probes, RTT, loss, liveness of every link     ./forward.ts  relaying for others
//   ./discovery.ts   records, gossip, lookups, relay attachment    ./steering.ts the path policy
//   ./inbound.ts     every frame from a link, sorted to its job
// It sees links only through LinkPort (./ports.ts), so the same code runs over werift in a real node
// and over in-memory links in the simulation (src/sim) and in whole-node tests.
//
//   send(dst)  ── select: rule (choose.ts) ──▶ direct link              (inner as is)
//                  or the path policy's relay ──▶ link to a relay    (forward frame, src/route/frame.ts)
//              ── the frame's channel (frame.ts channelFor) ──▶ link.sendPacket / sendControl
//   receive(from link) ── inbound.ts sorts it: forward frame for us ──▶ deliver(src, inner)
//                      (delivery reports taken there) · forward frame for another ──▶ forward.ts
//                      · hop frame ──▶ probes (linkhealth) · records / lookups (discovery) · unreachable
//   tick()  ── probes, liveness, relay attachment, idle links, records; every second a policy round
//              (discounted UCB per destination, src/route/policy.ts) and delivery reports
// docs/PROTOCOL.md ("Paths and relays") has the wire format; docs/PATHS.md the policy.
import { NODE_ID_BYTES, type NodeId } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import { choosePath, pathCost, pathName, type PathCandidate } from "./choose.ts";
import type { RewardWeights } from "./policy.ts";
import { POLICY_ROUND_MS, Steering, type PolicyView } from "./steering.ts";
import { encodeForward, encodeHop, FORWARD_HEADER, idBody, LINK_AUTH_BYTES, MAX_RELAYS, TYPE_SIGNAL, type Framing, type HopKind } from "./frame.ts";
import { putFrame, putFrames } from "./put.ts";
import type { DiscoveryRecord } from "./record.ts";
import { LinkHealth, type LinkReport } from "./linkhealth.ts";
import { Discovery, LOOKUP_EVERY_MS } from "./discovery.ts";
import { Forwarder } from "./forward.ts";
import { Inbound } from "./inbound.ts";
import type { RouterOptions } from "./ports.ts";

export type { LinkPort, RouterLink, RouterOptions } from "./ports.ts";
export type { LinkReport } from "./linkhealth.ts";
export { DEAD_MS, PROBE_MS } from "./linkhealth.ts";

const CONNECT_EVERY_MS = 1_000;
/** Re-choose a flow's path at most this often (liveness changes only at ticks anyway). */
const CHOICE_MS = 50;
const EMPTY = new Uint8Array(0);

/** What the router keeps per destination (or source) it exchanges end-to-end traffic with. */
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

export interface PathReport extends PathCandidate {
  name: string;
  cost: number;
}

export class Router {
  // State. The Router and its parts are owned by the node's event loop (every call comes from it).
  /** Counters, shared with the parts (each counts its own). */
  readonly stats: RouterStats = {
    forwarded: 0, forwardedBytes: 0, droppedNoRoute: 0, droppedFairness: 0, droppedLoop: 0, droppedNotRelay: 0, droppedMalformed: 0,
    sentDirect: 0, sentRelayed: 0, noPath: 0, recordsAccepted: 0, recordsRefused: 0,
  };
  /** Per destination/source of end-to-end traffic: activity, path in use, traces. Owned here. */
  private readonly flows = new Map<NodeId, Flow>();
  private lastPolicyRound = -Infinity;
  /** Links and their measurements. */
  private readonly health: LinkHealth;
  /** Records, gossip, lookups, relay attachment (member lookups are passed on through it). */
  readonly discovery: Discovery;
  /** Frames for others, when we relay. */
  private readonly forwarder: Forwarder;
  /** The path policy among relay paths, and delivery reports. */
  private readonly steering: Steering;
  /** Frames from links, sorted to the part whose job they are. */
  private readonly inbound: Inbound;
  private readonly self: NodeId;
  private readonly log: Log;

  constructor(private readonly opts: RouterOptions) {
    this.self = opts.self;
    this.log = opts.log ?? (() => {});
    const now = opts.now;
    const sendHop = (peer: NodeId, kind: HopKind, body: Uint8Array) => this.sendHop(peer, kind, body);
    this.health = new LinkHealth({ links: opts.links, now, sendHop, onChange: () => this.discovery.invalidate(), onAlive: (peer) => opts.onPathUp?.(peer), log: this.log, random: opts.random && (() => opts.random!()) });
    this.discovery = new Discovery({
      self: opts.self, relayEnabled: opts.relay.enabled, crypto: opts.crypto, now, links: opts.links, health: this.health, stats: this.stats, sendHop,
      talksTo: (id) => this.flows.has(id), load: (t) => this.forwarder.load(t), hints: opts.hints, relaysWanted: opts.relaysWanted, onRecord: opts.onRecord, checks: opts.checks,
      memberLookup: opts.memberLookup, members: opts.members, certOf: opts.certOf, log: this.log,
    });
    this.forwarder = new Forwarder({ self: opts.self, relay: opts.relay, now, health: this.health, discovery: this.discovery, stats: this.stats, sendFrame: (peer, b) => this.sendFrame(peer, b), sendFrames: (peer, fs, framing) => this.sendFrames(peer, fs, framing), sendHop, log: this.log });
    this.steering = new Steering({ send: (dst, inner) => (opts.sealed ? opts.sealed(dst, inner) : this.send(dst, inner)), relayPolicy: opts.relayPolicy, random: opts.random, onDecision: opts.onDecision, log: this.log });
    if (opts.weights) this.steering.weights = opts.weights;
    this.inbound = new Inbound({
      self: opts.self, health: this.health, discovery: this.discovery, forwarder: this.forwarder, steering: this.steering, stats: this.stats, sealed: opts.sealed !== undefined,
      deliver: opts.deliver, deliverBatch: opts.deliverBatch, onMember: opts.onMember,
      traced: (src, trace) => {
        const f = this.flows.get(src);
        if (f && (f.inTrace.length || trace.length)) f.inTrace = trace;
      },
    });
  }

  private now(): number {
    return this.opts.now();
  }

  // ── links ──────────────────────────────────────────────────────────────────────────────────────────

  /** A link to `peer` opened. */
  linked(peer: NodeId): void {
    this.health.opened(peer);
    this.discovery.linked(peer);
    // A new relay link changes what our record says: out now, not at the next tick (lookups wait for it).
    if (this.isRelay(peer)) this.discovery.publish(this.now());
    this.opts.onPathUp?.(peer);
  }

  /** A link to `peer` closed. */
  unlinked(peer: NodeId): void {
    this.health.closed(peer);
  }

  /** The link to `peer` may be dead (its seed socket closed): confirm it at the fast probe rate. */
  suspect(peer: NodeId): void {
    this.health.suspect(peer);
  }

  /** A seed told us it relays: attach to it. */
  addRelay(id: NodeId): void {
    this.discovery.addRelay(id);
  }

  isRelay(id: NodeId): boolean {
    return this.discovery.isRelay(id);
  }

  // ── sending ────────────────────────────────────────────────────────────────────────────────────────

  /** Every path to `dst` we could use now, with its measurements and cost. */
  candidates(dst: NodeId): PathCandidate[] {
    const out: PathCandidate[] = [];
    const d = this.health.get(dst);
    if (d) out.push({ path: { kind: "direct" }, alive: this.health.alive(dst), rttMs: d.rttMs, loss: d.loss });
    for (const [id, i] of this.health.entries())
      if (id !== dst && this.isRelay(id)) out.push({ path: { kind: "relay", via: id }, alive: this.health.alive(id) && !this.forwarder.avoided(dst, id), rttMs: i.rttMs, loss: i.loss });
    return out;
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
    return c.path.kind === "direct" ? mtu : mtu - FORWARD_HEADER - MAX_RELAYS * NODE_ID_BYTES - LINK_AUTH_BYTES;
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
   * Send an end-to-end payload (session packet or signal) to `dst` over the best path now, a relay path at
   * once while a direct link is asked for; false when there is none. With no live path, an open direct link
   * judged dead still takes it (a handshake's confirming keepalive; the TUN's packets wait: hasPath()).
   */
  send(dst: NodeId, inner: Uint8Array): boolean {
    const c = this.choose(dst);
    if (!c) return this.health.get(dst) !== undefined && this.sendFrame(dst, inner);
    if (c.path.kind === "direct") {
      this.stats.sentDirect++;
      return this.sendFrame(dst, inner);
    }
    this.stats.sentRelayed++;
    this.steering.sent(dst, inner.length);
    return this.sendFrame(c.path.via, encodeForward(dst, this.self, inner));
  }

  /** The path for what goes to `dst` now (asking for a direct link where it is not one; noting a change). */
  private choose(dst: NodeId): PathCandidate | undefined {
    const f = this.flow(dst);
    const c = this.current(dst, f);
    if (!c || c.path.kind !== "direct") this.wantDirect(dst, f);
    if (!c) {
      this.stats.noPath++;
      return undefined;
    }
    const name = pathName(c.path);
    if (f.path !== name) {
      if (f.path) this.log("info", `path to ${dst}: ${f.path} → ${name}`);
      this.opts.onPathChange?.(dst, f.path, name);
      f.path = name;
    }
    return c;
  }

  /**
   * send() for a run of sealed data packets to `dst` (one TUN read): the path is chosen once (and noted,
   * as send does), and the run goes to that path's link as one batch, in order: on a relay path as
   * forward frames that share one header (Framing: the link copies each once).
   */
  sendBatch(dst: NodeId, inners: Uint8Array[]): void {
    if (inners.length === 0) return;
    if (inners.length === 1) return void this.send(dst, inners[0]);
    const c = this.choose(dst);
    if (!c) {
      // As send(): no live path, but a link to dst that may yet carry them (its health in doubt).
      if (this.health.get(dst) !== undefined) for (const b of inners) this.sendFrame(dst, b);
      else this.stats.noPath += inners.length - 1; // choose() counted one
      return;
    }
    const peer = c.path.kind === "relay" ? c.path.via : dst;
    const link = this.opts.links.link(peer);
    if (!link?.sendPackets || link.state !== "open") return inners.forEach((b) => this.send(dst, b));
    if (c.path.kind === "direct") {
      this.stats.sentDirect += inners.length;
      this.health.used(peer);
      return void link.sendPackets(inners);
    }
    this.stats.sentRelayed += inners.length;
    for (const b of inners) this.steering.sent(dst, b.length);
    this.sendFrames(peer, inners, { head: encodeForward(dst, this.self, EMPTY), skip: 0 });
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
    return this.sendFrame(c.path.via, encodeForward(dst, this.self, inner));
  }

  /** Want a direct link to `dst` (the link port retries with backoff). */
  connect(dst: NodeId): void {
    this.opts.links.connect(dst);
  }

  private wantDirect(dst: NodeId, f: Flow): void {
    const now = this.now();
    if (now - f.lastConnect < CONNECT_EVERY_MS) return;
    f.lastConnect = now;
    this.opts.links.connect(dst);
  }

  /** Frames for `peer` that share a head (frame.ts Framing): ./put.ts. */
  private sendFrames(peer: NodeId, frames: Uint8Array[], framing: Framing): void {
    putFrames(this.opts.links.link(peer), peer, frames, framing, this.health);
  }

  /** Put a frame on the link to `peer`, on the channel channelFor (frame.ts) says; false when not sent. */
  private sendFrame(peer: NodeId, b: Uint8Array): boolean {
    return putFrame(this.opts.links.link(peer), peer, b, this.health);
  }

  private sendHop(peer: NodeId, kind: HopKind, body: Uint8Array): void {
    this.sendFrame(peer, encodeHop(kind, body));
  }

  // ── receiving (./inbound.ts) ───────────────────────────────────────────────────────────────────────

  /** Something authenticated arrived on the link to `peer` outside its frames (Link.onAlive): it lives. */
  heard(peer: NodeId): void {
    this.health.heard(peer);
  }

  /** Anything that arrived on the link to `peer`: to the part whose job it is (./inbound.ts). */
  receive(peer: NodeId, b: Uint8Array): void {
    this.inbound.receive(peer, b);
  }

  /** Packets that arrived together on the link to `peer` (one GRO read of session data): ./inbound.ts. */
  receiveBatch(peer: NodeId, bs: Uint8Array[]): void {
    this.inbound.receiveBatch(peer, bs);
  }

  /** The session opened a data packet from `peer` (came in on `link`, first relay `via`): now it counts. */
  opened(peer: NodeId, link: NodeId, via: NodeId | undefined, bytes: number): void {
    this.inbound.opened(peer, link, via, bytes);
  }

  /** A delivery report that arrived sealed in `src`'s session. */
  sealedReport(src: NodeId, payload: Uint8Array): void {
    this.inbound.sealedReport(src, payload);
  }

  /** The adjacent node to hand a frame for `dst` to, at most `hops` relays on (./forward.ts). */
  nextHop(dst: NodeId, hops: number, exclude?: ReadonlySet<NodeId>): NodeId | undefined {
    return this.forwarder.nextHop(dst, hops, exclude);
  }

  // ── discovery ──────────────────────────────────────────────────────────────────────────────────────

  /** The record we hold for `id`, if any. */
  record(id: NodeId): DiscoveryRecord | undefined {
    return this.discovery.record(id);
  }

  /** The seed URLs relays put in their records (for STUN when our own seeds are gone). */
  relayHints(): string[] {
    return this.discovery.relayHints();
  }

  get recordCount(): number {
    return this.discovery.count;
  }

  /** Ask our relays for the owner of an overlay IPv6 address (its 10 node-id bytes), at most once a second. */
  lookupAddress(bits: Uint8Array): void {
    this.discovery.lookupAddress(bits);
  }

  /** Ask our relays which member holds an address or name (an opaque query), at most once a second per query. */
  lookupMember(query: Uint8Array): void {
    this.discovery.lookupMember(query);
  }

  /** Ask our relays for `dst`'s record (its public identity), at most once a second per destination. */
  lookup(dst: NodeId): void {
    const r = this.discovery.record(dst);
    if (r) return this.opts.onRecord?.(r);
    const f = this.flow(dst);
    const now = this.now();
    if (now - f.lastLookup < LOOKUP_EVERY_MS) return;
    // Spaced only once asked: with no relay linked yet (a node just up), the next packet asks again.
    if (this.discovery.ask(idBody(dst))) f.lastLookup = now;
  }

  /** This relay's load in percent (./forward.ts). */
  load(now: number = this.now()): number {
    return this.forwarder.load(now);
  }

  // ── timers ─────────────────────────────────────────────────────────────────────────────────────────

  /** Run every ~100-250 ms: probes, liveness, relay attachment, idle links, records. */
  tick(): void {
    const now = this.now();
    this.health.tick(now);
    this.discovery.attachRelays();
    if (now - this.lastPolicyRound >= POLICY_ROUND_MS) {
      this.lastPolicyRound = now;
      this.steering.sendReports();
      for (const [dst, f] of this.flows)
        if (now - f.lastActive < this.opts.idleTimeoutMs) this.steering.round(now, dst, this.candidates(dst).filter((c) => c.alive && c.path.kind === "relay"), f.path);
    }
    this.closeIdle(now);
    this.forwarder.expire(now);
    this.discovery.expire(now);
    this.discovery.publish(now);
  }

  private closeIdle(now: number): void {
    const idle = this.opts.idleTimeoutMs;
    for (const [peer, f] of this.flows) {
      // A flow with a lookup out stays until the answer can come: an edge takes a non-relay record only for a flow it has.
      if (now - f.lastActive < idle || now - f.lastLookup < 10 * LOOKUP_EVERY_MS) continue;
      this.flows.delete(peer);
      this.steering.forget(peer);
      if (this.health.get(peer) && f.lastActive > -Infinity && !this.opts.relay.enabled && !this.isRelay(peer)) {
        this.log("info", `link to ${peer} idle for ${Math.round((now - f.lastActive) / 1000)} s: closing it`);
        this.opts.links.disconnect(peer, "idle");
        this.unlinked(peer);
      }
      this.discovery.forget(peer);
    }
    // A link nobody has sent on since it opened (the peer linked to us) idles out the same way.
    if (this.opts.relay.enabled) return;
    for (const [peer, i] of this.health.entries())
      if (!this.flows.has(peer) && !this.isRelay(peer) && now - i.openedAt > idle) {
        this.log("info", `link to ${peer} unused for ${Math.round((now - i.openedAt) / 1000)} s: closing it`);
        this.opts.links.disconnect(peer, "idle");
        this.unlinked(peer);
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
    return this.health.report((peer) => this.isRelay(peer));
  }

  get flowCount(): number {
    return this.flows.size;
  }

  get linkCount(): number {
    return this.health.size;
  }

  get sources(): number {
    return this.forwarder.sources;
  }
}
