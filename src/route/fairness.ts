// Relay limits: a bandwidth cap shared fairly among the sources using the relay.
//
// Each source seen in the last ACTIVE_MS gets a token bucket refilled at cap / active sources, with a
// burst of BURST_S seconds; a source over its share is dropped while others still get theirs. With no
// cap (0) every frame passes. Sources are keyed by node id (the frame's authenticated first hop).
import type { NodeId } from "../identity/identity.ts";

const ACTIVE_MS = 2_000;
const BURST_S = 0.25;

interface Bucket {
  tokens: number;
  at: number;
  seen: number;
}

export class FairShare {
  private readonly buckets = new Map<NodeId, Bucket>();
  private active = 0;
  private countedAt = 0;

  /** `capBps`: bits per second for all sources together; 0 = unlimited. */
  constructor(private readonly capBps: number, private readonly now: () => number) {}

  /** Whether `source` may send `bytes` more now (and charge it if so). */
  allow(source: NodeId, bytes: number): boolean {
    if (this.capBps <= 0) return true;
    const now = this.now();
    let b = this.buckets.get(source);
    if (!b) this.buckets.set(source, (b = { tokens: Infinity, at: now, seen: now })); // capped to one burst below
    if (now - this.countedAt > 250) this.recount(now);
    const share = this.capBps / 8 / Math.max(1, this.active);
    b.tokens = Math.min(share * BURST_S + bytes, b.tokens + ((now - b.at) / 1000) * share);
    b.at = now;
    b.seen = now;
    if (b.tokens < bytes) return false;
    b.tokens -= bytes;
    return true;
  }

  private recount(now: number): void {
    this.countedAt = now;
    this.active = 0;
    for (const [id, b] of this.buckets) {
      if (now - b.seen > ACTIVE_MS) this.buckets.delete(id);
      else this.active++;
    }
  }

  get sources(): number {
    return this.buckets.size;
  }
}
