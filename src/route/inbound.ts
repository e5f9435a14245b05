// Inbound: every frame a link hands the router, sorted to the job it is for. A forward frame for us
// is delivered (its trace kept for the flow), one for another goes to the forwarder; a hop frame goes
// to link health (probes), discovery (records, lookups), the forwarder (unreachable) or the node
// (member answers); anything else from the link is a direct end-to-end payload. Delivery reports stop
// here (steering); data is counted for the sender's report.
//
// Liveness: everything but a bare data packet is authenticated by the link (DTLS, or the fast
// channel's per-link tag), so it counts as life; a data packet may ride the fast channel
// unauthenticated (its AEAD is end to end), so with sealed reports on it counts only once its session
// opened it (opened()).
import type { NodeId } from "../identity/identity.ts";
import type { Discovery } from "./discovery.ts";
import type { Forwarder } from "./forward.ts";
import {
  decodeForward, HOP_LOOKUP, HOP_MEMBER, HOP_MEMBER_LOOKUP, HOP_MISS, HOP_PROBE, HOP_PROBE_ACK, HOP_RECORD, HOP_RECORD_CERT, HOP_UNREACHABLE, TYPE_DATA, TYPE_FORWARD, TYPE_HOP, TYPE_REPORT,
} from "./frame.ts";
import type { LinkHealth } from "./linkhealth.ts";
import type { RouterOptions } from "./ports.ts";
import type { RouterStats } from "./router.ts";
import type { Steering } from "./steering.ts";

export interface InboundOptions {
  self: NodeId;
  /** The router's parts, each taking the frames of its job. */
  health: LinkHealth;
  discovery: Discovery;
  forwarder: Forwarder;
  steering: Steering;
  stats: RouterStats;
  /** Whether delivery reports travel sealed in sessions (RouterOptions.sealed given). */
  sealed: boolean;
  deliver: RouterOptions["deliver"];
  deliverBatch?: RouterOptions["deliverBatch"];
  onMember: RouterOptions["onMember"];
  /** The relays a frame from `src` passed (empty: direct), kept for a flow the router has (no state for a sender a frame merely names). */
  traced(src: NodeId, trace: NodeId[]): void;
}

/** Whether `b` starts with the first `n` bytes of `a`. */
function sameStart(a: Uint8Array, b: Uint8Array, n: number): boolean {
  if (b.length < n) return false;
  for (let k = 0; k < n; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** The trace of a frame that came direct (shared: no allocation per packet; never changed). */
const DIRECT: NodeId[] = [];

export class Inbound {
  // No state of its own: it hands each frame to the part that owns what the frame is about.
  constructor(private readonly o: InboundOptions) {}

  /** Anything that arrived on the link to `peer`. Garbage is counted and dropped. */
  receive(peer: NodeId, b: Uint8Array): void {
    const o = this.o;
    if (b[0] !== TYPE_DATA || !o.sealed) o.health.heard(peer);
    if (b.length === 0) return;
    // Member packets on the link: it is in use (probed fast while they flow).
    if (b[0] === TYPE_DATA || b[0] === TYPE_FORWARD) o.health.used(peer);
    if (b[0] === TYPE_FORWARD) return this.onForward(peer, b);
    if (b[0] === TYPE_HOP) return this.onHop(peer, b);
    o.traced(peer, DIRECT);
    if (this.arrived(peer, b, undefined)) return;
    o.deliver(peer, b, peer, undefined);
  }

  /**
   * Packets that arrived together on the link to `peer` (one GRO read): when all are session data, what
   * receive() does per frame is done once for the batch (the link is in use; the flow's trace is direct)
   * and the packets go on together; anything else, frame by frame.
   */
  receiveBatch(peer: NodeId, bs: Uint8Array[]): void {
    const o = this.o;
    if (bs.length > 1 && bs.every((b) => b[0] === TYPE_FORWARD)) return this.onForwardBatch(peer, bs);
    for (const b of bs) if (b.length === 0 || b[0] !== TYPE_DATA) return bs.forEach((x) => this.receive(peer, x));
    if (!o.deliverBatch || bs.length === 0) return bs.forEach((x) => this.receive(peer, x));
    if (!o.sealed) o.health.heard(peer);
    o.health.used(peer);
    o.traced(peer, DIRECT);
    if (!o.sealed) for (const b of bs) o.steering.delivered(peer, undefined, b.length);
    o.deliverBatch(peer, bs);
  }

  private onForward(peer: NodeId, b: Uint8Array): void {
    const o = this.o;
    const f = decodeForward(b);
    if (!f) {
      o.stats.droppedMalformed++;
      return;
    }
    if (f.dst !== o.self) return o.forwarder.forward(peer, b, f);
    o.traced(f.src, f.trace);
    if (this.arrived(f.src, f.inner, f.trace[0])) return;
    o.deliver(f.src, f.inner, peer, f.trace[0]);
  }

  /**
   * Forward frames that arrived together on the link to `peer` (one GRO read, each authenticated by the
   * link): each run that shares its header up to and with the inner type is decoded once, then handed on
   * as one (forwarder.forwardRun), or, for us, its session data delivered as one batch.
   */
  private onForwardBatch(peer: NodeId, bs: Uint8Array[]): void {
    const o = this.o;
    o.health.heard(peer);
    o.health.used(peer);
    for (let i = 0; i < bs.length; ) {
      const first = bs[i];
      const f = decodeForward(first);
      if (!f) {
        o.stats.droppedMalformed++;
        i++;
        continue;
      }
      const head = first.length - f.inner.length;
      let j = i + 1;
      while (j < bs.length && sameStart(first, bs[j], head + 1)) j++;
      const run = i === 0 && j === bs.length ? bs : bs.slice(i, j);
      i = j;
      if (f.dst !== o.self) o.forwarder.forwardRun(peer, run, f);
      else if (f.inner[0] === TYPE_DATA && o.sealed && o.deliverBatch && run.length > 1) {
        o.traced(f.src, f.trace);
        o.deliverBatch(f.src, run.map((b) => b.subarray(head)), peer, f.trace[0]);
      } else for (const b of run) this.onForward(peer, b);
    }
  }

  /**
   * The session opened a data packet of `bytes` from `peer` that came in on `link` through relay `via`
   * (undefined: direct): now it counts, for the link's liveness and (`bytes`: its IP payload, 0 for
   * keepalives and control messages) for `peer`'s delivery report.
   */
  opened(peer: NodeId, link: NodeId, via: NodeId | undefined, bytes: number): void {
    this.o.health.heard(link);
    if (this.o.sealed && bytes > 0) this.o.steering.delivered(peer, via, bytes);
  }

  /** A delivery report that arrived sealed in `src`'s session. */
  sealedReport(src: NodeId, payload: Uint8Array): void {
    if (payload[0] === TYPE_REPORT) this.o.steering.report(src, payload);
  }

  /**
   * An end-to-end payload reached us: data is counted for the source's delivery report; a delivery
   * report about our own traffic goes to steering and no further (true).
   */
  private arrived(src: NodeId, inner: Uint8Array, via: NodeId | undefined): boolean {
    const o = this.o;
    if (inner[0] === TYPE_REPORT) {
      // Sealed reports on: an unsealed one proves nothing about its sender (any linked node can make one).
      if (o.sealed) o.stats.droppedMalformed++;
      else o.steering.report(src, inner);
      return true;
    }
    // Counted once the session opened it (opened()), when sealed reports are on.
    if (inner[0] === TYPE_DATA && !o.sealed) o.steering.delivered(src, via, inner.length);
    return false;
  }

  private onHop(peer: NodeId, b: Uint8Array): void {
    const o = this.o;
    const body = b.subarray(2);
    switch (b[1]) {
      case HOP_PROBE:
      case HOP_PROBE_ACK:
        return o.health.onProbe(peer, b[1], body);
      case HOP_RECORD:
        return o.discovery.onRecord(peer, body);
      case HOP_RECORD_CERT:
        return o.discovery.onRecordCert(peer, body);
      case HOP_LOOKUP:
        return o.discovery.answerLookup(peer, body);
      case HOP_MEMBER_LOOKUP:
        return o.discovery.answerMember(peer, body);
      case HOP_MEMBER:
        return o.onMember?.(peer, body);
      case HOP_MISS:
        return;
      case HOP_UNREACHABLE:
        return o.forwarder.onUnreachable(peer, body);
      default:
        o.stats.droppedMalformed++;
    }
  }
}
