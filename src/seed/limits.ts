// Per-source budgets for a seed that faces the internet: concurrent connections and costly operations
// (a registration or an invite check is an ML-DSA verification, ~3.7 ms) per address, and overall.
//
// A source is an IPv4 address, or an IPv6 /64 (one host's whole prefix). Entries without connections
// or debt are forgotten, so the table holds only sources that are active now.

/** Concurrent WebSocket connections one source may hold. */
export const CONNECTIONS_PER_SOURCE = 64;
/** Costly operations (signature checks) per second one source may cause, and its burst. */
export const COSTLY_PER_SOURCE_PER_S = 5;
export const COSTLY_SOURCE_BURST = 20;
/** Costly operations per second for all sources together (bounds the CPU a flood of many addresses takes). */
export const COSTLY_TOTAL_PER_S = 100;
const MAX_SOURCES = 65_536;

interface Bucket {
  tokens: number;
  at: number;
}

interface Source {
  connections: number;
  costly: Bucket;
}

/** The key a remote address is budgeted under. */
export function sourceKey(address: string): string {
  const a = address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
  if (!a.includes(":")) return a;
  const [head, tail = ""] = a.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = a.includes("::") ? [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t] : h;
  return groups.slice(0, 4).map((g) => parseInt(g || "0", 16).toString(16)).join(":") + "::/64";
}

function refill(b: Bucket, rate: number, burst: number, now: number): void {
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
  b.at = now;
}

function take(b: Bucket, rate: number, burst: number, now: number): boolean {
  refill(b, rate, burst, now);
  if (b.tokens < 1) return false;
  b.tokens--;
  return true;
}

export class SourceLimits {
  private readonly sources = new Map<string, Source>();
  private readonly total: Bucket;
  readonly stats = { refusedConnections: 0, refusedCostly: 0 };

  constructor(
    private readonly now: () => number = Date.now,
    readonly limits = { connections: CONNECTIONS_PER_SOURCE, costlyPerS: COSTLY_PER_SOURCE_PER_S, costlyBurst: COSTLY_SOURCE_BURST, totalPerS: COSTLY_TOTAL_PER_S },
  ) {
    this.total = { tokens: limits.totalPerS, at: now() };
  }

  private source(key: string, create: boolean): Source | undefined {
    let s = this.sources.get(key);
    if (!s && create) {
      if (this.sources.size >= MAX_SOURCES) this.sweep();
      if (this.sources.size >= MAX_SOURCES) return undefined;
      s = { connections: 0, costly: { tokens: this.limits.costlyBurst, at: this.now() } };
      this.sources.set(key, s);
    }
    return s;
  }

  /** A new connection from `address`: true if under its cap (then call release() when it closes). */
  connect(address: string): boolean {
    const s = this.source(sourceKey(address), true);
    if (!s || s.connections >= this.limits.connections) {
      this.stats.refusedConnections++;
      return false;
    }
    s.connections++;
    return true;
  }

  release(address: string): void {
    const key = sourceKey(address);
    const s = this.sources.get(key);
    if (!s) return;
    s.connections = Math.max(0, s.connections - 1);
    if (s.connections === 0 && s.costly.tokens >= this.limits.costlyBurst - 1) this.sources.delete(key);
  }

  /** May `address` make us do one costly check now? (Charged when true.) */
  costly(address: string): boolean {
    const now = this.now();
    const s = this.source(sourceKey(address), true);
    if (!s || !take(s.costly, this.limits.costlyPerS, this.limits.costlyBurst, now) || !take(this.total, this.limits.totalPerS, this.limits.totalPerS, now)) {
      this.stats.refusedCostly++;
      return false;
    }
    return true;
  }

  /** Sources tracked now (for tests and status). */
  get size(): number {
    return this.sources.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, s] of this.sources) {
      if (s.connections > 0) continue;
      refill(s.costly, this.limits.costlyPerS, this.limits.costlyBurst, now);
      if (s.costly.tokens >= this.limits.costlyBurst - 1) this.sources.delete(k);
    }
  }
}
