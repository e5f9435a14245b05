// Handshake messages are larger than a datagram (an initiation is ~8.8 KB): split and reassemble them.
//
// Fragment:
//   0      1          5        6        7
//   +------+----------+--------+--------+-------------------------+
//   | type | msg id   | index  | count  | up to 1193 bytes of msg |
//   |      | (u32 LE) |        |        |                         |
//   +------+----------+--------+--------+-------------------------+
// type is TYPE_INIT_FRAGMENT or TYPE_RESP_FRAGMENT. Reassembly keeps a few messages per source, more
// per link (the adjacent node the fragments came in on, authenticated by DTLS) and a bounded total,
// and forgets incomplete ones after a time-out, so garbage cannot grow memory. When a quota is full
// the oldest partial message goes: of the same source, else of the same link, else of the link that
// holds the most — so junk on one link only ever evicts that link's own partial messages.
import { randomInt } from "node:crypto";

export const FRAGMENT_HEADER = 7;
export const MAX_FRAGMENT = 1200;
export const MAX_FRAGMENTS = 24;
const PER_SOURCE = 4;
const PER_LINK = 16;
const TOTAL = 128;
const TIMEOUT_MS = 5_000;

export function fragment(type: number, message: Uint8Array): Uint8Array[] {
  const chunk = MAX_FRAGMENT - FRAGMENT_HEADER;
  const count = Math.ceil(message.length / chunk);
  if (count > MAX_FRAGMENTS) throw new Error(`fragment: message of ${message.length} bytes needs more than ${MAX_FRAGMENTS} fragments`);
  const id = randomInt(0, 2 ** 32 - 1);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const body = message.subarray(i * chunk, (i + 1) * chunk);
    const f = new Uint8Array(FRAGMENT_HEADER + body.length);
    f[0] = type;
    new DataView(f.buffer).setUint32(1, id, true);
    f[5] = i;
    f[6] = count;
    f.set(body, FRAGMENT_HEADER);
    out.push(f);
  }
  return out;
}

interface Partial {
  key: string;
  link: string;
  source: string;
  type: number;
  parts: (Uint8Array | undefined)[];
  have: number;
  started: number;
}

export class Reassembler {
  private partials = new Map<string, Partial>();
  dropped = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Add a fragment that came in on `link` from `source` (the claimed end-to-end sender: the link itself
   * when direct); returns the whole message when this fragment completes it.
   */
  add(link: string, source: string, f: Uint8Array): Uint8Array | undefined {
    if (f.length <= FRAGMENT_HEADER || f.length > MAX_FRAGMENT) return void this.dropped++;
    const id = new DataView(f.buffer, f.byteOffset).getUint32(1, true);
    const index = f[5], count = f[6];
    if (count === 0 || count > MAX_FRAGMENTS || index >= count) return void this.dropped++;
    // A complete single-fragment message needs no state.
    if (count === 1) return f.slice(FRAGMENT_HEADER);
    const key = `${link}/${source}/${f[0]}/${id}`;
    let p = this.partials.get(key);
    if (!p) {
      this.expire();
      this.makeRoom(link, source);
      p = { key, link, source, type: f[0], parts: new Array(count), have: 0, started: this.now() };
      this.partials.set(key, p);
    }
    if (p.parts.length !== count || p.type !== f[0]) return void this.dropped++;
    if (p.parts[index]) return; // duplicate
    // Every fragment but the last is full-size, so the message cannot be stretched.
    if (index < count - 1 && f.length !== MAX_FRAGMENT) return void this.dropped++;
    p.parts[index] = f.slice(FRAGMENT_HEADER);
    if (++p.have < count) return;
    this.partials.delete(key);
    const total = p.parts.reduce((n, x) => n + x!.length, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const x of p.parts) {
      out.set(x!, off);
      off += x!.length;
    }
    return out;
  }

  /** Forget incomplete messages older than the time-out. */
  expire(): void {
    const now = this.now();
    for (const [k, p] of this.partials) if (now - p.started > TIMEOUT_MS) this.partials.delete(k);
  }

  /** Evict so that one more partial message from `source` on `link` fits every quota. */
  private makeRoom(link: string, source: string): void {
    let fromSource: Partial | undefined, nSource = 0, fromLink: Partial | undefined, nLink = 0;
    const perLink = new Map<string, { n: number; oldest: Partial }>();
    for (const p of this.partials.values()) {
      // Map iteration is in insertion order: the first seen is the oldest.
      if (p.link === link) {
        nLink++;
        fromLink ??= p;
        if (p.source === source) (nSource++, (fromSource ??= p));
      }
      const l = perLink.get(p.link);
      if (l) l.n++;
      else perLink.set(p.link, { n: 1, oldest: p });
    }
    if (nSource >= PER_SOURCE) return this.evict(fromSource!);
    if (nLink >= PER_LINK) return this.evict(fromLink!);
    if (this.partials.size < TOTAL) return;
    let biggest: { n: number; oldest: Partial } | undefined;
    for (const l of perLink.values()) if (!biggest || l.n > biggest.n) biggest = l;
    this.evict(biggest!.oldest);
  }

  private evict(p: Partial): void {
    this.partials.delete(p.key);
    this.evicted++;
  }

  evicted = 0;

  get pending(): number {
    return this.partials.size;
  }
}
