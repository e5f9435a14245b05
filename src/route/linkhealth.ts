// Link health: every link to an adjacent node probed (RTT, jitter, loss) and judged alive or dead.
//
// A probe (hop frame PROBE, a u32 id) goes on each open link; the answer (PROBE_ACK) gives an RTT sample
// (smoothed like TCP's SRTT/RTTVAR) and lowers the loss estimate; a probe unanswered after
// PROBE_TIMEOUT_MS raises it. Anything heard on a link counts as life (heard()).
//
// The rate adapts, so that a relay with a thousand idle links does not spend a core on probes:
// - active (packets for members sent or received on it within ACTIVE_FOR_MS, used()) or in doubt (dead,
//   lossy, a probe unanswered for DOUBT_MS, or nothing heard for longer than an idle round): every PROBE_MS,
//   and dead after DEAD_MS of silence, as before. A link that wakes is probed at once, and counts its
//   silence from the wake-up: traffic on a link that died while idle fails over DEAD_MS later.
// - idle: probed once nothing was heard on it for a gap drawn from [3/4, 1] × IDLE_PROBE_MS (since the last
//   thing heard or probe sent), and dead after IDLE_DEAD_MS of silence. Both ends run this, so the end whose
//   gap runs out first probes and the other, hearing that probe, does not: one exchange per idle link per
//   gap, not one per end (a relay with a thousand idle members answers most of them). The exchange also
//   keeps the tether's UDP fresh (../tether/fallback.ts) and the fast channel's pair warm: each of those
//   backs off to longer intervals of its own while the link idles. A probe unanswered for DOUBT_MS puts
//   it in doubt (fast probes, so a lost idle probe costs a few fast ones, not the link); nothing heard
//   within CONFIRM_MS of that probe, it is dead: an idle link to a peer that died is known dead within
//   CONFIRM_MS of its next probe (≤ IDLE_PROBE_MS after the last thing heard), not IDLE_DEAD_MS after it.
//   The idle probe is the link's own where it has one (RouterLink.probeIdle: the fast channel's probe
//   and answer, two datagrams, where a PROBE frame on the data channel is four, SACKs included, and a
//   pass through DTLS and SCTP at each end); its answer comes back as an RTT (lightAnswered). Unanswered
//   for DOUBT_MS (and nothing else heard) it counts as lost and puts the link in doubt the same way, and
//   the fast probes that follow are PROBE frames.
// - suspected (suspect(): the peer's seed socket closed, so its process may be gone): probed at the fast
//   rate at once and for CONFIRM_MS at least, and dead when nothing was heard within CONFIRM_MS.
// A dead link silent for CLOSE_DEAD_MS is closed.
import type { NodeId } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import { HOP_PROBE, HOP_PROBE_ACK, readU32, u32, type HopKind } from "./frame.ts";
import type { LinkPort } from "./ports.ts";

/** Probe every link this often; a link with nothing heard for DEAD_MS is dead; after CLOSE_DEAD_MS it is closed. */
export const PROBE_MS = 150;
export const DEAD_MS = 600;
/** Idle links: probed after at most this much silence (at least 3/4 of it), dead after IDLE_DEAD_MS of it. */
export const IDLE_PROBE_MS = 20_000;
export const IDLE_DEAD_MS = IDLE_PROBE_MS + DEAD_MS;
/** A link that carried member packets this recently is active. */
export const ACTIVE_FOR_MS = 5_000;
/** An idle link with a probe unanswered this long is in doubt: probed at the fast rate. */
export const DOUBT_MS = 300;
/** A link waiting for an answer (a probe sent, or a suspicion) this long with nothing heard is dead. */
export const CONFIRM_MS = DOUBT_MS + DEAD_MS;
/** A link that lost this much (a path left for its losses) is in doubt until it measures clean again. */
const DOUBT_LOSS = 0.05;
const PROBE_TIMEOUT_MS = 1_000;
const CLOSE_DEAD_MS = 10_000;

export interface LinkInfo {
  readonly openedAt: number;
  lastRx: number;
  /** When the next fast probe is due (active or in doubt). */
  nextProbe: number;
  /** When the last probe went, and the silence (ms, drawn per probe) after which an idle link is probed. */
  lastProbe: number;
  idleGap: number;
  probeId: number;
  readonly probes: Map<number, number>;
  rttMs?: number;
  rttVarMs: number;
  loss: number;
  alive: boolean;
  /** Times the link went silent (alive → dead). */
  failures: number;
  /** When member packets last went or came on it (used()), and when it last woke from idle. */
  lastUse: number;
  wokeAt: number;
  /** When we began waiting for an answer (the first probe sent, or a suspicion, after lastRx); waiting while > lastRx. */
  askedAt: number;
  /** When the link was last suspected (suspect()); in doubt for CONFIRM_MS, and while nothing was heard since. */
  suspectedAt: number;
  /** When the link's own idle probe (probeIdle) went out; waiting for it while > lastRx and not answered. */
  lightAt: number;
  /**
   * tick() passes the link by until then: an idle link with no probe out has nothing to do before its
   * next idle probe (used() and suspect() reset it), so a thousand idle links cost a comparison each a tick.
   */
  checkAt: number;
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
  /** What carries the link now: UDP (WebRTC), or TCP (the WebSocket to a relay, where UDP fails). */
  transport: "udp" | "tcp";
}

export interface LinkHealthOptions {
  links: LinkPort;
  now(): number;
  sendHop(peer: NodeId, kind: HopKind, body: Uint8Array): void;
  /** The set of links, or whether one is alive, changed (the relay graph is rebuilt). */
  onChange(): void;
  /** A dead link answers again: packets waiting for a path may go. */
  onAlive(peer: NodeId): void;
  log: Log;
  /** Uniform in [0, 1) (the idle probes' spread); Math.random unless a test sets it. */
  random?: () => number;
}

export class LinkHealth {
  // State, owned by the Router that made this (every call comes from its event loop):
  /** One entry per link we were told opened (linked()) and not yet closed. */
  private readonly info = new Map<NodeId, LinkInfo>();

  constructor(private readonly opts: LinkHealthOptions) {}

  /** A link to `peer` opened: it starts alive, to be probed at once. */
  opened(peer: NodeId): void {
    const now = this.opts.now();
    this.info.set(peer, { openedAt: now, lastRx: now, nextProbe: now, lastProbe: -Infinity, idleGap: this.gap(), probeId: 1, probes: new Map(), rttVarMs: 0, loss: 0, alive: true, failures: 0, lastUse: now, wokeAt: now, askedAt: -Infinity, suspectedAt: -Infinity, lightAt: -Infinity, checkAt: -Infinity });
    this.opts.onChange();
  }

  /** An idle link's silence before its next probe: spread, so that the end that waits longer hears the other's probe first. */
  private gap(): number {
    return IDLE_PROBE_MS * (0.75 + 0.25 * (this.opts.random ?? Math.random)());
  }

  /** When the link's next probe is due: at the fast rate, or once the link was silent for its idle gap. */
  due(peer: NodeId, now: number = this.opts.now()): number | undefined {
    const i = this.info.get(peer);
    return i && (this.isFast(i, now) ? i.nextProbe : Math.max(i.lastRx, i.lastProbe) + i.idleGap);
  }

  /** A link to `peer` closed (or we closed it). */
  closed(peer: NodeId): void {
    if (this.info.delete(peer)) this.opts.onChange();
  }

  /** Something arrived on the link to `peer`: it lives. */
  heard(peer: NodeId): void {
    const i = this.info.get(peer);
    if (i) i.lastRx = this.opts.now();
  }

  /**
   * The link to `peer` may be dead (its peer's seed socket closed: the process may be gone): probe it at
   * the fast rate now and for CONFIRM_MS (a live peer's answers keep coming: FallbackLink.orphaned() tells
   * them from what a dying one had in flight); nothing heard within CONFIRM_MS, it is dead.
   */
  suspect(peer: NodeId): void {
    const i = this.info.get(peer);
    if (!i) return;
    const now = this.opts.now();
    i.suspectedAt = now;
    if (!(i.askedAt > i.lastRx)) i.askedAt = now;
    i.nextProbe = now;
    i.checkAt = -Infinity;
  }

  /**
   * Member packets went or came on the link to `peer`: it is active. One that was idle wakes: probed at
   * the next tick, and its silence is counted from now (it may have died unnoticed while idle).
   */
  used(peer: NodeId): void {
    const i = this.info.get(peer);
    if (!i) return;
    const now = this.opts.now();
    // Waking, it is probed at the next tick (tick() pulls an idle link's next probe in once it is fast).
    if (now - i.lastUse >= ACTIVE_FOR_MS && i.alive) {
      i.wokeAt = now;
      i.checkAt = -Infinity;
    }
    i.lastUse = now;
  }

  /** Whether the link to `peer` is probed at the fast rate now (active or in doubt). */
  fast(peer: NodeId, now: number = this.opts.now()): boolean {
    const i = this.info.get(peer);
    return i !== undefined && this.isFast(i, now);
  }

  private isFast(i: LinkInfo, now: number): boolean {
    if (!i.alive || i.loss > DOUBT_LOSS || now - i.lastUse < ACTIVE_FOR_MS || now - i.lastRx > IDLE_PROBE_MS + DOUBT_MS || i.suspectedAt > i.lastRx || now - i.suspectedAt < CONFIRM_MS) return true;
    if (i.lightAt > i.lastRx && now - i.lightAt > DOUBT_MS) return true;
    for (const at of i.probes.values()) if (now - at > DOUBT_MS) return true;
    return false;
  }

  /** The link's measurements, if we have a link to `peer`. */
  get(peer: NodeId): LinkInfo | undefined {
    return this.info.get(peer);
  }

  /** Adjacent nodes we have a link to, alive or not. */
  peers(): IterableIterator<NodeId> {
    return this.info.keys();
  }

  entries(): IterableIterator<[NodeId, LinkInfo]> {
    return this.info.entries();
  }

  get size(): number {
    return this.info.size;
  }

  /** Whether the link to `peer` is open and answered lately. */
  alive(peer: NodeId): boolean {
    const i = this.info.get(peer);
    return i !== undefined && i.alive && this.opts.links.link(peer)?.state === "open";
  }

  /** A probe or probe answer from `peer` (the hop frame's kind and body). */
  onProbe(peer: NodeId, kind: typeof HOP_PROBE | typeof HOP_PROBE_ACK, body: Uint8Array): void {
    if (kind === HOP_PROBE) return this.opts.sendHop(peer, HOP_PROBE_ACK, body);
    const i = this.info.get(peer);
    const id = readU32(body);
    const sentAt = id === undefined ? undefined : i?.probes.get(id);
    if (!i || sentAt === undefined) return;
    i.probes.delete(id!);
    this.sample(i, this.opts.now() - sentAt);
  }

  /** The answer to the link's own idle probe (probeIdle), `rttMs` after it went: a round trip like a PROBE_ACK's. */
  private lightAnswered(peer: NodeId, sentAt: number, rttMs: number): void {
    const i = this.info.get(peer);
    if (!i || i.lightAt !== sentAt) return; // a later probe went out, or the link closed and opened again
    i.lightAt = -Infinity;
    i.lastRx = this.opts.now();
    this.sample(i, rttMs);
  }

  private sample(i: LinkInfo, rttMs: number): void {
    if (i.rttMs === undefined) [i.rttMs, i.rttVarMs] = [rttMs, rttMs / 2];
    else {
      i.rttVarMs = 0.75 * i.rttVarMs + 0.25 * Math.abs(i.rttMs - rttMs);
      i.rttMs = 0.875 * i.rttMs + 0.125 * rttMs;
    }
    i.loss *= 0.9;
  }

  /** Probe what is due, time out lost probes, judge each link alive or dead, close long-dead ones. */
  tick(now: number): void {
    for (const [peer, i] of this.info) {
      if (now < i.checkAt) continue;
      const link = this.opts.links.link(peer);
      if (!link || link.state === "closed") {
        this.closed(peer);
        continue;
      }
      if (link.state !== "open") continue;
      for (const [id, at] of i.probes)
        if (now - at > PROBE_TIMEOUT_MS) {
          i.probes.delete(id);
          i.loss = 0.9 * i.loss + 0.1;
        }
      // The link's own idle probe unanswered for DOUBT_MS, nothing else heard either: lost, as a PROBE
      // frame would be after PROBE_TIMEOUT_MS (the loss puts the link in doubt until probes measure clean).
      if (i.lightAt > i.lastRx && now - i.lightAt > DOUBT_MS) {
        i.lightAt = -Infinity;
        i.loss = 0.9 * i.loss + 0.1;
      }
      const active = now - i.lastUse < ACTIVE_FOR_MS;
      const fast = this.isFast(i, now);
      // Back to the fast rate (doubt) without waiting out an idle interval.
      if (fast && i.nextProbe > now + PROBE_MS) i.nextProbe = now;
      // Idle: only once nothing was heard (the peer's own probe included) and nothing sent for its gap.
      if (fast ? now >= i.nextProbe : now - Math.max(i.lastRx, i.lastProbe) >= i.idleGap) {
        i.nextProbe = now + (fast ? PROBE_MS : IDLE_PROBE_MS);
        i.lastProbe = now;
        if (!fast) i.idleGap = this.gap();
        if (!(i.askedAt > i.lastRx)) i.askedAt = now;
        if (!fast && link.probeIdle?.((rtt) => this.lightAnswered(peer, now, rtt))) i.lightAt = now;
        else {
          const id = i.probeId++ >>> 0;
          i.probes.set(id, now);
          this.opts.sendHop(peer, HOP_PROBE, u32(id));
        }
      }
      // An active link's silence counts from its wake-up (not from the last idle probe's answer); a dead
      // one comes back only on something heard. Any link waiting CONFIRM_MS for an answer (an idle probe
      // unanswered, a suspicion) with nothing heard is dead.
      const since = i.alive ? Math.max(i.lastRx, i.wokeAt) : i.lastRx;
      const waited = i.askedAt > i.lastRx ? now - i.askedAt : 0;
      const alive = now - since < (active ? DEAD_MS : IDLE_DEAD_MS) && waited < CONFIRM_MS;
      if (alive !== i.alive) {
        i.alive = alive;
        if (!alive) i.failures++;
        this.opts.onChange();
        this.opts.log(alive ? "info" : "warn", `link to ${peer} ${alive ? "answers again" : `silent for ${now - i.lastRx} ms: paths through it are dead`}`);
        if (alive) this.opts.onAlive(peer);
      }
      // Idle, answered and not in doubt: nothing changes before the next idle probe unless used() or suspect() says so.
      i.checkAt = alive && !fast && i.probes.size === 0 && !(i.lightAt > i.lastRx) ? Math.max(i.lastRx, i.lastProbe) + i.idleGap : -Infinity;
      // Dead and silent this long (an idle link's silence between exchanges may be longer, alive).
      if (!alive && now - i.lastRx > CLOSE_DEAD_MS) {
        this.opts.links.disconnect(peer, "no answer to probes");
        this.closed(peer);
      }
    }
  }

  /** Links and their measurements: smoothed RTT and its mean deviation (jitter), loss, uptime, failures. */
  report(isRelay: (peer: NodeId) => boolean): LinkReport[] {
    const now = this.opts.now();
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    return [...this.info].map(([peer, i]) => ({
      peer,
      relay: isRelay(peer),
      alive: this.alive(peer),
      rtt_ms: i.rttMs === undefined ? null : r3(i.rttMs),
      jitter_ms: i.rttMs === undefined ? null : r3(i.rttVarMs),
      loss: r3(i.loss),
      uptime_s: Math.round((now - i.openedAt) / 1000),
      failures: i.failures,
      transport: this.opts.links.link(peer)?.transport ?? "udp",
    }));
  }
}
