// A simulated clock: events run in time order, instantly. Time starts at a real-looking epoch (ms) so
// records' issue and expiry times behave as on a real node.
interface Event {
  at: number;
  seq: number;
  fn: () => void;
}

export class SimClock {
  private heap: Event[] = [];
  private seq = 0;
  now: number;
  readonly start: number;

  constructor(start = 1_800_000_000_000) {
    this.now = this.start = start;
  }

  /** Run `fn` after `ms` of simulated time. */
  after(ms: number, fn: () => void): void {
    this.push({ at: this.now + Math.max(0, ms), seq: this.seq++, fn });
  }

  /** Run `fn` every `ms`, first after `offset`. */
  every(ms: number, fn: () => void, offset = ms): void {
    const tick = () => {
      fn();
      this.after(ms, tick);
    };
    this.after(offset, tick);
  }

  /** Run events until `until` (absolute sim time). */
  runUntil(until: number): void {
    while (this.heap.length && this.heap[0].at <= until) {
      const e = this.pop();
      this.now = e.at;
      e.fn();
    }
    this.now = until;
  }

  /** Seconds since the start. */
  get elapsed(): number {
    return (this.now - this.start) / 1000;
  }

  private less(a: Event, b: Event): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): Event {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/** A small seeded PRNG (mulberry32): the simulation is deterministic for a given seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
