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

  /** Whether the node has spent more than half its handshake budget recently: time to ask for cookies. */
  underLoad(): boolean {
    return this.refill(this.total, this.overall).tokens < this.overall / 2;
  }
}
