// Token buckets for handshake responses: a rate per source and one for the whole node.
export class TokenBuckets {
  private buckets = new Map<string, { tokens: number; at: number }>();
  private total: { tokens: number; at: number };

  constructor(private readonly perSource: number, private readonly overall: number, private readonly now: () => number) {
    this.total = { tokens: overall, at: now() };
  }

  private refill(b: { tokens: number; at: number }, rate: number): void {
    const t = this.now();
    b.tokens = Math.min(rate, b.tokens + ((t - b.at) / 1000) * rate);
    b.at = t;
  }

  /** Take one token for `source`; false when it or the whole node is over its rate. */
  take(source: string): boolean {
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size > 4096) this.buckets.clear();
      this.buckets.set(source, (b = { tokens: this.perSource, at: this.now() }));
    }
    this.refill(b, this.perSource);
    this.refill(this.total, this.overall);
    if (b.tokens < 1 || this.total.tokens < 1) return false;
    b.tokens--;
    this.total.tokens--;
    return true;
  }
}
