// CoDel (RFC 8289) for the queue in front of the TUN writer: packets that waited longer than TARGET for
// a whole INTERVAL start being dropped, ever more often, until the wait falls below TARGET again. TCP
// reads the drops as congestion and slows down, so under load the queue stays a few milliseconds deep
// while short bursts still fit the ring whole.
export const CODEL_TARGET_MS = 5;
export const CODEL_INTERVAL_MS = 100;

export class Codel {
  private firstAboveAt = 0;
  private dropping = false;
  private dropNextAt = 0;
  private count = 0;
  private lastCount = 0;

  constructor(private readonly targetMs = CODEL_TARGET_MS, private readonly intervalMs = CODEL_INTERVAL_MS) {}

  /** Whether to drop a packet that waited `sojournMs` and leaves the queue at `now` (ms). */
  shouldDrop(sojournMs: number, now: number): boolean {
    const above = this.persistentlyAbove(sojournMs, now);
    if (this.dropping) {
      if (!above) {
        this.dropping = false;
        return false;
      }
      if (now < this.dropNextAt) return false;
      this.count++;
      this.dropNextAt = this.next(this.dropNextAt);
      return true;
    }
    if (!above) return false;
    // Enter the dropping state; resume near the old rate if we left it only recently.
    this.dropping = true;
    const delta = this.count - this.lastCount;
    this.count = delta > 1 && now - this.dropNextAt < 16 * this.intervalMs ? delta : 1;
    this.lastCount = this.count;
    this.dropNextAt = this.next(now);
    return true;
  }

  private persistentlyAbove(sojournMs: number, now: number): boolean {
    if (sojournMs < this.targetMs) {
      this.firstAboveAt = 0;
      return false;
    }
    if (this.firstAboveAt === 0) {
      this.firstAboveAt = now + this.intervalMs;
      return false;
    }
    return now >= this.firstAboveAt;
  }

  private next(t: number): number {
    return t + this.intervalMs / Math.sqrt(this.count);
  }
}
