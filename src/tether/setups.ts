// Link set-up pacing: when a node may try a peer again (Retries), and how many WebRTC set-ups it runs
// at once (SetupGate).
//
// A relay restarted with hundreds of members, or a fresh one they all join at once, gets hundreds of
// offers and knocks within seconds. Run all at once, each set-up (ICE gathering, DTLS, SCTP, then the
// session handshake) takes longer than the offerer waits (CONNECT_TIMEOUT_MS), every member times out
// and tries again, and the attempts pile up (14–29 of 300 linked after 3 minutes, the relay growing by
// hundreds of MB). So the gate runs a bounded number at once and queues the rest, one entry per peer (a
// newer offer from the same peer replaces its queued one: one set-up per peer pair at a time), and drops
// what waited so long that the offerer has given up; members retry with jittered exponential backoff,
// so a crowd that failed together does not come back together.
//
// Only verified, admitted peers reach the gate (the link manager checks every signal first): an unadmitted
// sender makes us keep no entry and start no set-up. An admitted one holds at most one queue entry and
// one running set-up.
import type { NodeId } from "../identity/identity.ts";

/**
 * Peers riding their seed sockets alone that a node tries a WebRTC link to per round (TETHER_RETRY_MS).
 * Each try signs a signal (~20 ms of ML-DSA, more under load), and the peer tries on its own too: a relay
 * with 300 members joining through its seed knocked on every one of them every 5 s (27 % of its CPU).
 */
export const TETHER_ATTEMPTS = 16;

/** Up to `k` of `items`, picked at random (every one gets its turn, whatever the order they come in). */
export function sample<T>(items: T[], k: number, random: () => number = Math.random): T[] {
  const a = items.slice();
  const n = Math.min(k, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, n);
}

/** Jittered exponential backoff per peer: the first retry after about `minMs`, doubling up to `maxMs`. */
export class Retries {
  private readonly next = new Map<NodeId, { at: number; delay: number }>();

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /** Whether an attempt on `peer` may go now (its back-off has run out, or it never failed). */
  due(peer: NodeId): boolean {
    const n = this.next.get(peer);
    return !n || this.now() >= n.at;
  }

  /** An attempt on `peer` goes now: the next one waits the current delay, ±50 %, and the delay doubles. */
  attempted(peer: NodeId): void {
    const n = this.next.get(peer);
    const delay = n ? Math.min(this.maxMs, n.delay * 2) : this.minMs;
    this.next.set(peer, { at: this.now() + delay * (0.5 + this.random()), delay });
  }

  /** The next attempt on `peer` waits at most about `ms` (and the delay restarts from there). */
  cap(peer: NodeId, ms: number): void {
    const n = this.next.get(peer);
    if (!n) return;
    n.delay = Math.min(n.delay, ms);
    n.at = Math.min(n.at, this.now() + ms * (0.5 + this.random()));
  }

  /** Start `peer` over at the shortest delay (it linked, or it asked for a link). */
  reset(peer: NodeId): void {
    this.next.delete(peer);
  }

  get size(): number {
    return this.next.size;
  }
}

export interface SetupGateOptions {
  /** Set-ups running at once. */
  running: number;
  /** Set-ups waiting (one per peer); beyond it a new one is refused. */
  queued: number;
  /** A queued set-up older than this is dropped when its turn comes (the peer gave up on it and retries). */
  staleMs: number;
  /**
   * A running set-up gives up its slot after this long even if its link has neither opened nor closed
   * (it goes on, outside the count): a peer that went away mid-set-up holds a slot for this, not for the
   * whole connect time-out. So the gate bounds the rate of set-ups (running / slotMs at the least), not
   * only how many run at once.
   */
  slotMs: number;
  /**
   * Run a set-up's start a little later (setImmediate): a burst of offers from one peer that a loaded
   * node reads all at once (the peer retried while we were behind) then makes one set-up, not one each
   * replacing the last. Without it, starts run at once.
   */
  defer?: (f: () => void) => void;
  now?: () => number;
  log?: (msg: string) => void;
}

/**
 * At most `running` set-ups at once, the rest queued in arrival order, one per peer. A set-up holds its
 * slot from start() until done(peer) (its link opened or closed), or slotMs. Starting one for a peer that already
 * has one running takes over that slot (the new one replaces the old link).
 */
export class SetupGate {
  /** Running set-ups: when each started. */
  private readonly active = new Map<NodeId, number>();
  private timer?: ReturnType<typeof setTimeout>;
  private readonly waiting = new Map<NodeId, { at: number; start: () => void }>();
  /** Starts deferred and not yet run (the latest per peer). */
  private readonly starting = new Map<NodeId, () => void>();
  private readonly now: () => number;
  readonly stats = { started: 0, queued: 0, refused: 0, stale: 0 };

  constructor(private readonly o: SetupGateOptions) {
    this.now = o.now ?? Date.now;
  }

  /**
   * Start `peer`'s set-up now if a slot is free (or it holds one), else queue it (replacing its queued
   * one). "refused": the queue is full (the peer retries later).
   */
  admit(peer: NodeId, start: () => void): "started" | "queued" | "refused" {
    this.expire();
    if (this.active.has(peer) || this.active.size < this.o.running) {
      this.waiting.delete(peer);
      this.active.set(peer, this.now());
      this.stats.started++;
      this.launch(peer, start);
      return "started";
    }
    if (!this.waiting.has(peer) && this.waiting.size >= this.o.queued) {
      this.stats.refused++;
      return "refused";
    }
    // A newer one from the same peer takes the older one's place in the line (it has waited that long).
    this.waiting.set(peer, { at: this.now(), start });
    this.stats.queued++;
    this.arm();
    return "queued";
  }

  /** Whether `peer` has a set-up running or queued. */
  has(peer: NodeId): boolean {
    return this.active.has(peer) || this.waiting.has(peer);
  }

  /** Whether `peer` has a set-up queued (not started). */
  isQueued(peer: NodeId): boolean {
    return this.waiting.has(peer);
  }

  /** `peer`'s running set-up ended (its link opened or closed): its slot goes to the next in line. */
  done(peer: NodeId): void {
    if (this.active.delete(peer)) this.pump();
  }

  /** `peer` is no longer wanted: its set-up, running or queued, is forgotten. */
  cancel(peer: NodeId): void {
    this.waiting.delete(peer);
    this.starting.delete(peer);
    this.done(peer);
  }

  private launch(peer: NodeId, start: () => void): void {
    if (!this.o.defer) return start();
    const deferred = this.starting.has(peer);
    this.starting.set(peer, start);
    if (deferred) return; // one start per burst: the latest
    this.o.defer(() => {
      const f = this.starting.get(peer);
      this.starting.delete(peer);
      f?.();
    });
  }

  /** Slots held longer than slotMs are given up. */
  private expire(): void {
    const now = this.now();
    for (const [peer, at] of this.active) if (now - at >= this.o.slotMs) this.active.delete(peer);
  }

  /** With set-ups waiting, look again when the oldest running one's slot runs out. */
  private arm(): void {
    if (this.timer || !this.waiting.size || !this.active.size) return;
    const oldest = Math.min(...this.active.values());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(0, oldest + this.o.slotMs - this.now()));
    this.timer.unref?.();
  }

  /** Start waiting set-ups while there are free slots (exposed for tests with a fake clock). */
  pump(): void {
    this.expire();
    const now = this.now();
    while (this.active.size < this.o.running && this.waiting.size) {
      const [peer, w] = this.waiting.entries().next().value!;
      this.waiting.delete(peer);
      if (now - w.at > this.o.staleMs) {
        this.stats.stale++;
        this.o.log?.(`set-up for ${peer} dropped: queued ${now - w.at} ms, its offerer gave up`);
        continue;
      }
      this.active.set(peer, now);
      this.stats.started++;
      this.launch(peer, w.start);
    }
    this.arm();
  }

  get running(): number {
    return this.active.size;
  }

  get queued(): number {
    return this.waiting.size;
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.active.clear();
    this.starting.clear();
    this.waiting.clear();
  }
}
