// The hold queue: every packet that waits for something pending before it can be sealed and sent.
// One owner for the whole node (made by the node, expired by Inside.tick), keyed by what is pending:
//   path       a peer's keys (its record, from our relays) or any path to it       ./inside.ts
//   handshake  a session handshake with a peer that has keys and a path           src/session/sessions.ts
//   address    whose an overlay IPv6 address is (its owner's record)               ./inside.ts
//   member     which member holds an IPv4 address of our network                   src/node/lookups.ts
// Bounded: HOLD_PER_KEY packets per peer or address (the oldest go first), HOLD_STRANGERS addresses
// of each stranger kind (address, member) at once, HOLD_TOTAL packets in all, and none for longer than
// HOLD_MS. Every packet held and every packet dropped is counted per kind (status: hold_*).
/** Packets held per peer or per address at most; older ones are dropped. */
export const HOLD_PER_KEY = 64;
/** Unknown addresses (IPv6 owners, IPv4 members) held for at once, per kind. */
export const HOLD_STRANGERS = 256;
/** Packets held in all (every kind): about 6 MB of full-size packets. */
export const HOLD_TOTAL = 4096;
/** How long a packet waits at most. */
export const HOLD_MS = 10_000;

export type HoldKind = "path" | "handshake" | "address" | "member";
const KINDS: HoldKind[] = ["path", "handshake", "address", "member"];

export interface HoldCounters {
  /** Packets put on hold. */
  held: number;
  /** Packets dropped from the hold: refused (full), pushed out by newer ones, expired, or given up on. */
  dropped: number;
}

interface Queue {
  packets: Uint8Array[];
  /** When each packet was held (same order). */
  at: number[];
}

export class Hold {
  // State, owned by the node's event loop (the data path, the sessions and the member lookups share it):
  private readonly queues = new Map<HoldKind, Map<string, Queue>>(KINDS.map((k) => [k, new Map()]));
  private total = 0;
  readonly stats = Object.fromEntries(KINDS.map((k) => [k, { held: 0, dropped: 0 }])) as Record<HoldKind, HoldCounters>;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /**
   * Hold a copy of `packet` until `key` (a node id, or an address) is no longer pending; false when
   * refused (dropped). A copy: packets from the TUN are views of its reader's buffers, read into again
   * once their batch is handled.
   */
  put(kind: HoldKind, key: string, packet: Uint8Array): boolean {
    const byKey = this.queues.get(kind)!;
    let q = byKey.get(key);
    if (!q && (kind === "address" || kind === "member") && byKey.size >= HOLD_STRANGERS) {
      this.stats[kind].dropped++;
      return false;
    }
    if (q && q.packets.length >= HOLD_PER_KEY) {
      q.packets.shift();
      q.at.shift();
      this.total--;
      this.stats[kind].dropped++;
    } else if (this.total >= HOLD_TOTAL) {
      this.stats[kind].dropped++;
      return false;
    }
    if (!q) byKey.set(key, (q = { packets: [], at: [] }));
    q.packets.push(packet.slice());
    q.at.push(this.now());
    this.total++;
    this.stats[kind].held++;
    return true;
  }

  /** Whether packets wait for `key`. */
  has(kind: HoldKind, key: string): boolean {
    return this.queues.get(kind)!.has(key);
  }

  /** Take (remove and return, oldest first) what waits for `key`; empty when nothing does. */
  take(kind: HoldKind, key: string): Uint8Array[] {
    const byKey = this.queues.get(kind)!;
    const q = byKey.get(key);
    if (!q) return [];
    byKey.delete(key);
    this.total -= q.packets.length;
    return q.packets;
  }

  /** Drop what waits for `key` (what it waited for will not come); counted. */
  drop(kind: HoldKind, key: string): number {
    const n = this.take(kind, key).length;
    this.stats[kind].dropped += n;
    return n;
  }

  /** The keys packets of `kind` wait for. */
  keys(kind: HoldKind): string[] {
    return [...this.queues.get(kind)!.keys()];
  }

  /** Packets waiting now (every kind). */
  get size(): number {
    return this.total;
  }

  /** Drop what has waited longer than HOLD_MS (call every tick). */
  expire(): void {
    const old = this.now() - HOLD_MS;
    for (const kind of KINDS) {
      const byKey = this.queues.get(kind)!;
      for (const [key, q] of byKey) {
        if (q.at[0] > old) continue;
        let n = 0;
        while (n < q.at.length && q.at[n] <= old) n++;
        q.packets.splice(0, n);
        q.at.splice(0, n);
        this.total -= n;
        this.stats[kind].dropped += n;
        if (q.packets.length === 0) byKey.delete(key);
      }
    }
  }
}
