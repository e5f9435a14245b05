// Token buckets for handshake work: a rate per source, per link and for the whole node, and "under load".
//
// A source is a claimed end-to-end sender on one link (`link|src`); a link is the adjacent node the
// bytes came in on (authenticated by DTLS). A handshake is answered only when all three buckets have a
// token, and then all three are charged. The node is "under load" once the whole-node bucket is below
// half: from then on an initiation must carry a valid cookie (mac2) before any bucket is charged.
const MAX_KEYS = 4096;

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly sources = new Map<string, Bucket>();
  private readonly links = new Map<string, Bucket>();
  private readonly total: Bucket;

  constructor(private readonly perSource: number, private readonly perLink: number, private readonly overall: number, private readonly now: () => number) {
    this.total = { tokens: overall, at: now() };
  }

  private refill(b: Bucket, rate: number): Bucket {
    const t = this.now();
    b.tokens = Math.min(rate, b.tokens + ((t - b.at) / 1000) * rate);
    b.at = t;
    return b;
  }

  private bucket(map: Map<string, Bucket>, key: string, rate: number): Bucket {
    let b = map.get(key);
    if (!b) {
      // Forgetting everyone only hands out fresh buckets; the whole-node bucket still holds.
      if (map.size >= MAX_KEYS) map.clear();
      map.set(key, (b = { tokens: rate, at: this.now() }));
    }
    return this.refill(b, rate);
  }

  /** Take one token for `source` on `link`; false (nothing charged) when any of the three is empty. */
  take(link: string, source: string): boolean {
    const s = this.bucket(this.sources, `${link}|${source}`, this.perSource);
    const l = this.bucket(this.links, link, this.perLink);
    const t = this.refill(this.total, this.overall);
    if (s.tokens < 1 || l.tokens < 1 || t.tokens < 1) return false;
    s.tokens--;
    l.tokens--;
    t.tokens--;
    return true;
  }

  /** Whether the whole-node bucket has a token left (nothing is taken). */
  hasOverall(): boolean {
    return this.refill(this.total, this.overall).tokens >= 1;
  }

  /** Whether the node has spent more than half its handshake budget recently: time to ask for cookies. */
  underLoad(): boolean {
    return this.refill(this.total, this.overall).tokens < this.overall / 2;
  }
}

/** A check (a signature to verify) waiting for budget: who it came through, whom it is about, the work. */
interface Waiting {
  link: string;
  source: string;
  check: () => void;
}

/**
 * Signature checks within budgets per source, per link and overall (TokenBuckets). A check over budget
 * waits, bounded: per link and in all, the latest per key (a record re-sent replaces the one waiting),
 * and runs when tokens come back (drain(), on the owner's tick). So an honest burst (a relay handing a
 * new neighbour all its records, a peer sending every revocation it knows) is only delayed, and a
 * hostile member costs at most its link's rate of checks whatever it sends.
 */
export class CheckBudget {
  readonly stats = { checked: 0, waited: 0, dropped: 0 };
  private readonly buckets: TokenBuckets;
  private readonly waiting = new Map<string, Waiting>();
  private readonly perLinkWaiting = new Map<string, number>();

  constructor(
    rates: { perSource: number; perLink: number; overall: number },
    now: () => number,
    private readonly caps = { perLink: 64, overall: 1024 },
  ) {
    this.buckets = new TokenBuckets(rates.perSource, rates.perLink, rates.overall, now);
  }

  /** Run `check` now if the budgets allow, else keep it waiting under `key` (or drop it when full). */
  run(link: string, source: string, key: string, check: () => void): "now" | "waiting" | "dropped" {
    const k = `${link}|${key}`;
    if (!this.waiting.has(k) && this.buckets.take(link, source)) {
      this.stats.checked++;
      check();
      return "now";
    }
    if (this.waiting.has(k)) {
      this.waiting.delete(k); // the newest goes to the back, in place of the one waiting
      this.waiting.set(k, { link, source, check });
      return "waiting";
    }
    const n = this.perLinkWaiting.get(link) ?? 0;
    if (n >= this.caps.perLink || this.waiting.size >= this.caps.overall) {
      this.stats.dropped++;
      return "dropped";
    }
    this.perLinkWaiting.set(link, n + 1);
    this.waiting.set(k, { link, source, check });
    this.stats.waited++;
    return "waiting";
  }

  /** Run what waits, oldest first, as far as the budgets allow. */
  drain(): void {
    for (const [k, w] of this.waiting) {
      if (!this.buckets.take(w.link, w.source)) {
        if (!this.buckets.hasOverall()) return; // nothing more runs this round
        continue;
      }
      this.waiting.delete(k);
      const n = (this.perLinkWaiting.get(w.link) ?? 1) - 1;
      if (n > 0) this.perLinkWaiting.set(w.link, n);
      else this.perLinkWaiting.delete(w.link);
      this.stats.checked++;
      w.check();
    }
  }

  /** Checks waiting now. */
  get pending(): number {
    return this.waiting.size;
  }
}
