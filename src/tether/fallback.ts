// One link to an adjacent node over two transports: its WebRTC link (UDP) when that answers, else the
// WebSocket to the seed/relay (TCP, ./wslink.ts). The router sees one link of one more kind.
//
// Which transport a frame takes is decided per frame, on this side's own evidence: the UDP link is "fresh"
// while something that authenticated arrived on it within STALE_MS (Link.onAlive: DTLS messages, tagged
// fast-channel frames, fresh fast-channel probes and answers; not bare session data, which an on-path host
// spoofing the pair's addresses can send, and whose AEAD is checked only end to end). While both
// transports exist each side makes sure something goes on the UDP link every BEAT_MS (a one-byte beat,
// TYPE_TETHER_BEAT, when nothing else went), so freshness is known even while all traffic rides the
// WebSocket: when UDP stops, frames move to the WebSocket within STALE_MS plus a beat; when it answers
// again they move back. Sessions are end to end and never notice. Frames arriving on either transport are
// taken.
//
// Idle links (no member packets either way for ACTIVE_FOR_MS) beat every IDLE_BEAT_MS and go stale after
// IDLE_STALE_MS: a relay with a thousand idle members does not beat 13 times a second on each. The router's
// idle probe exchange (one every ≤ IDLE_PROBE_MS, 20 s, ../route/linkhealth.ts) rides UDP while it is
// fresh and is authenticated, so it keeps an idle link fresh and its beats unsent. A link
// that wakes beats at once and counts its silence from then, so traffic still moves to the WebSocket
// within STALE_MS of its first packet when UDP died while the link was idle.
import type { NodeId } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import { framed, type Framing } from "../route/frame.ts";
import { ridesFast, type FastStats } from "./fast.ts";
import { LinkListeners } from "./listeners.ts";
import type { Link } from "./webrtc.ts";
import type { WsLink } from "./wslink.ts";

export const TYPE_TETHER_BEAT = 0xcb;
export const BEAT_MS = 150;
export const STALE_MS = 500;
/** Longer than the router's idle probe gap (≤ 20 s): while its exchange runs, idle links send no beats. */
export const IDLE_BEAT_MS = 25_000;
export const IDLE_STALE_MS = IDLE_BEAT_MS + STALE_MS;
/** A link that carried member packets (session data, forward frames) this recently is active. */
export const ACTIVE_FOR_MS = 5_000;
const BEAT = Uint8Array.of(TYPE_TETHER_BEAT);

export class FallbackLink extends LinkListeners implements Link {
  /** Times the transport changed (to TCP, back to UDP), for status and tests. */
  readonly changes: { at: number; to: "udp" | "tcp" }[] = [];
  private primary?: Link;
  private ws?: WsLink;
  private lastPrimaryRx = -Infinity;
  /** When the WebSocket transport closed (the peer's seed socket, or ours to it). */
  private wsLostAt = -Infinity;
  private lastPrimaryTx = -Infinity;
  private lastUse = -Infinity;
  private wokeAt = -Infinity;
  private current: "udp" | "tcp" | undefined;
  /** beat() passes the link by until then (tick() sets it). */
  private due = -Infinity;
  private readonly aliveCbs: (() => void)[] = [];

  constructor(readonly peer: NodeId, private readonly log: Log, private readonly now: () => number = Date.now) {
    super();
  }

  /** Take `link` (WebRTC, open) as the UDP transport. */
  adopt(link: Link): void {
    if (this.state === "closed") return link.close("its tether closed");
    this.primary = link;
    this.lastPrimaryRx = this.now();
    link.onAlive?.(() => {
      if (this.primary !== link) return;
      this.lastPrimaryRx = this.now();
      for (const cb of this.aliveCbs) cb();
    });
    const rx = (b: Uint8Array, control: boolean) => {
      if (this.primary !== link) return;
      if (b.length === 1 && b[0] === TYPE_TETHER_BEAT) return;
      if (ridesFast(b)) this.used();
      this.deliver(b, control);
    };
    link.onPacket((b) => rx(b, false));
    // Session data from one GRO read (./fast.ts): the link's bookkeeping once, the packets on together.
    link.onPackets?.((bs) => {
      if (this.primary !== link) return;
      this.used();
      this.deliverMany(bs);
    });
    link.onControl((b) => rx(b, true));
    link.onClose((reason) => {
      if (this.primary !== link) return;
      this.primary = undefined;
      if (!this.ws) this.close(reason);
      else this.tick();
    });
    this.tick();
  }

  /** Something authenticated arrived on the UDP transport (Link.onAlive; the WebSocket's frames count as they come). */
  onAlive(cb: () => void): void {
    this.aliveCbs.push(cb);
  }

  /** Take `ws` as the TCP transport (the socket to the seed/relay). */
  attach(ws: WsLink): void {
    if (this.state === "closed") return ws.close("its tether closed");
    this.ws = ws;
    ws.onPacket((b) => {
      if (this.ws !== ws) return;
      if (ridesFast(b)) this.used();
      this.deliver(b, false);
    });
    ws.onControl((b) => this.ws === ws && this.deliver(b, true));
    ws.onClose((reason) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.wsLostAt = this.now();
      if (!this.primary || this.primary.state === "closed") this.close(reason);
      else this.tick();
    });
    this.tick();
  }

  /**
   * Whether the link lost its WebSocket and UDP went silent with it: the peer went away with its socket,
   * and what is left of the link is stale. What a dying peer had in flight may arrive just after its
   * socket closed, so only UDP heard STALE_MS or more after the loss says the peer is there (a live one
   * answers the fast probes the router sends for CONFIRM_MS when the socket goes, LinkHealth.suspect).
   */
  orphaned(): boolean {
    const now = this.now();
    return !this.ws && now - this.wsLostAt >= STALE_MS && this.lastPrimaryRx < this.wsLostAt + STALE_MS && now - this.lastPrimaryRx >= STALE_MS;
  }

  /** The node's beat timer (every BEAT_MS): tick() when something may be due. */
  beat(): void {
    if (this.now() >= this.due) this.tick();
  }

  get hasPrimary(): boolean {
    return this.primary?.state === "open";
  }

  get hasWs(): boolean {
    return this.ws?.state === "open";
  }

  /** Member packets went or came: the link is active; one that was idle beats at once. */
  private used(): void {
    const now = this.now();
    if (now - this.lastUse < ACTIVE_FOR_MS) {
      this.lastUse = now;
      return;
    }
    // Silence counts from the wake-up only while UDP was fresh (a stale link stays stale).
    if (this.fresh(now)) this.wokeAt = now;
    this.lastUse = now;
    this.tick();
  }

  private get active(): boolean {
    return this.now() - this.lastUse < ACTIVE_FOR_MS;
  }

  /** Whether something arrived on UDP lately enough (STALE_MS, from the wake-up, while active). */
  private fresh(now: number): boolean {
    return this.active ? now - Math.max(this.lastPrimaryRx, this.wokeAt) < STALE_MS : now - this.lastPrimaryRx < IDLE_STALE_MS;
  }

  /** The transport frames take now. */
  get transport(): "udp" | "tcp" {
    const p = this.primary;
    if (p?.state === "open" && (!this.hasWs || this.fresh(this.now()))) return "udp";
    return this.hasWs ? "tcp" : "udp";
  }

  private link(): Link | undefined {
    if (this.transport !== "udp") return this.ws;
    if (this.primary) this.lastPrimaryTx = this.now();
    return this.primary;
  }

  /**
   * Every BEAT_MS: while the WebSocket is there too, beat on UDP when nothing else went on it for a beat
   * interval (BEAT_MS active, IDLE_BEAT_MS idle); and note transport changes.
   */
  tick(): void {
    if (this.state === "closed") return;
    const now = this.now();
    // What went on UDP lately: through this link, or the fast channel's own probes and answers (an idle
    // link's exchange, ../route/linkhealth.ts: either end may send the probe, the other only answers).
    const txAt = Math.max(this.lastPrimaryTx, now - (this.primary?.sinceFastProbe ?? Infinity));
    if (this.primary?.state === "open" && this.hasWs && now - txAt >= (this.active ? BEAT_MS : IDLE_BEAT_MS) - 10) {
      // Idle, the fast channel's probe is the cheaper beat (one datagram each way, no SCTP and its SACK).
      if (this.active || !this.primary.probeIdle?.(() => {})) this.primary.sendProbe(BEAT);
      this.lastPrimaryTx = now;
    }
    const t = this.transport;
    // Idle on fresh UDP: nothing to do before its next beat or its staleness (events call tick() themselves).
    this.due = t === "udp" && !this.active && this.primary?.state === "open" ? (this.hasWs ? Math.min(Math.max(this.lastPrimaryTx, now - (this.primary?.sinceFastProbe ?? Infinity)) + IDLE_BEAT_MS - 10, this.lastPrimaryRx + IDLE_STALE_MS) : Infinity) : -Infinity;
    if (t === this.current) return;
    if (this.current !== undefined) {
      this.changes.push({ at: this.now(), to: t });
      if (this.changes.length > 32) this.changes.shift();
      this.log("info", t === "tcp" ? `link ${this.peer}: UDP silent for ${Math.round(this.now() - this.lastPrimaryRx)} ms, packets ride the WebSocket to the relay` : `link ${this.peer}: UDP answers, packets move back to it`);
    }
    this.current = t;
  }

  get fastMtu(): number | undefined {
    return this.transport === "udp" ? this.primary?.fastMtu : undefined;
  }

  /** The UDP link's far end on the underlay ("198.18.1.2:40000 srflx"), while UDP carries the link. */
  get remote(): string | undefined {
    return this.transport === "udp" ? this.primary?.remote : undefined;
  }

  get fastStats(): FastStats | undefined {
    return this.primary?.fastStats;
  }

  sendPacket(b: Uint8Array): boolean {
    const sent = this.state === "open" && !!this.link()?.sendPacket(b);
    this.used();
    return this.counted(sent);
  }

  sendProbe(b: Uint8Array): boolean {
    return this.counted(this.state === "open" && !!this.link()?.sendProbe(b));
  }

  /** On UDP only (on the WebSocket the router's probe frame goes); counts as something sent on UDP. */
  probeIdle(answered: (rttMs: number) => void): boolean {
    if (this.state !== "open" || this.transport !== "udp" || !this.primary?.probeIdle?.(answered)) return false;
    this.lastPrimaryTx = this.now();
    return true;
  }

  sendPackets(batch: readonly Uint8Array[], framing?: Framing): number {
    const link = this.link();
    if (this.state !== "open" || !link) {
      this.stats.txDropped += batch.length;
      return 0;
    }
    const sent = link.sendPackets ? link.sendPackets(batch, framing) : batch.filter((b) => link.sendPacket(framing ? framed(b, framing) : b)).length;
    this.stats.txPackets += sent;
    this.stats.txDropped += batch.length - sent;
    return sent;
  }

  sendControl(b: Uint8Array): void {
    if (this.state === "open") this.link()?.sendControl(b);
  }

  /** Close both transports' parts of this link (the seed socket itself stays: it signals too). */
  protected override closing(reason: string): void {
    const [p, w] = [this.primary, this.ws];
    this.primary = this.ws = undefined;
    p?.close(reason);
    w?.close(reason);
  }
}
