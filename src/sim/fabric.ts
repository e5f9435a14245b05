// In-memory links between simulated nodes: the LinkPort a Router uses, with delay, loss and failures.
//
// A link takes SETUP_MS to open (like WebRTC set-up) when `canLink` allows the pair and both nodes are
// up. A killed node goes silent: its links stay "open" on the survivors' side and simply stop carrying
// anything, as a dead relay behind a WebRTC link does, until the survivors' probes notice.
import type { NodeId } from "../identity/identity.ts";
import type { LinkPort, Router, RouterLink } from "../route/router.ts";
import type { SimClock } from "./clock.ts";

export const SETUP_MS = 300;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 15_000;

export interface FabricOptions {
  clock: SimClock;
  random: () => number;
  /** Whether a and b can link at all (NATs, blocks). */
  canLink(a: NodeId, b: NodeId): boolean;
  /** One-way delay of the a→b direction in ms. */
  delayMs(a: NodeId, b: NodeId): number;
  /** Fraction of unreliable messages lost on a→b. */
  loss?(a: NodeId, b: NodeId): number;
  /** Capacity of a→b in bit/s (unreliable messages beyond it are dropped; a 50 ms burst); none = unlimited. */
  capacityBps?(a: NodeId, b: NodeId): number | undefined;
  /** The fast-channel MTU the a→b link reports; none = any size goes. */
  fastMtu?(a: NodeId, b: NodeId): number | undefined;
}

class MemoryLink implements RouterLink {
  state: "connecting" | "open" | "closed" = "open";
  other!: MemoryLink;
  constructor(readonly owner: NodeId, readonly peer: NodeId, private readonly fabric: Fabric) {}
  sendPacket(b: Uint8Array): boolean {
    if (this.state !== "open") return false;
    this.fabric.carry(this, b, false);
    return true;
  }
  sendProbe(b: Uint8Array): boolean {
    return this.sendPacket(b);
  }
  sendControl(b: Uint8Array): void {
    if (this.state === "open") this.fabric.carry(this, b, true);
  }
  get fastMtu(): number | undefined {
    return this.fabric.fastMtu(this.owner, this.peer);
  }
}

export class Fabric {
  private readonly routers = new Map<NodeId, Router>();
  private readonly down = new Set<NodeId>();
  private readonly links = new Map<string, MemoryLink>();
  private readonly pending = new Map<string, { at: number; backoff: number; inFlight: boolean }>();
  messages = 0;

  constructor(private readonly opts: FabricOptions) {}

  add(id: NodeId, router: Router): void {
    this.routers.set(id, router);
  }

  fastMtu(a: NodeId, b: NodeId): number | undefined {
    return this.opts.fastMtu?.(a, b);
  }

  isUp(id: NodeId): boolean {
    return !this.down.has(id);
  }

  /** The node stops: nothing it sends or should receive moves any more. */
  kill(id: NodeId): void {
    this.down.add(id);
  }

  port(self: NodeId): LinkPort {
    return {
      link: (peer) => this.links.get(`${self}>${peer}`),
      connect: (peer) => this.connect(self, peer),
      disconnect: (peer) => this.close(self, peer),
    };
  }

  linkCount(): number {
    let n = 0;
    for (const l of this.links.values()) if (l.state === "open") n++;
    return n / 2;
  }

  private connect(a: NodeId, b: NodeId): void {
    if (a === b || this.down.has(a) || this.links.has(`${a}>${b}`)) return;
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    const now = this.opts.clock.now;
    const p = this.pending.get(key);
    if (p && (p.inFlight || now - p.at < p.backoff)) return;
    this.pending.set(key, { at: now, backoff: Math.min(RETRY_MAX_MS, p ? p.backoff * 2 : RETRY_MIN_MS), inFlight: true });
    this.opts.clock.after(SETUP_MS, () => {
      const q = this.pending.get(key)!;
      q.inFlight = false;
      if (this.down.has(a) || this.down.has(b) || !this.opts.canLink(a, b) || this.links.has(`${a}>${b}`)) return;
      this.pending.delete(key);
      const ab = new MemoryLink(a, b, this), ba = new MemoryLink(b, a, this);
      ab.other = ba;
      ba.other = ab;
      this.links.set(`${a}>${b}`, ab);
      this.links.set(`${b}>${a}`, ba);
      this.routers.get(a)!.linked(b);
      this.routers.get(b)!.linked(a);
    });
  }

  private close(a: NodeId, b: NodeId): void {
    for (const k of [`${a}>${b}`, `${b}>${a}`]) {
      const l = this.links.get(k);
      if (l) l.state = "closed";
      this.links.delete(k);
    }
    if (!this.down.has(b)) this.routers.get(b)?.unlinked(a);
  }

  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  private withinCapacity(a: NodeId, b: NodeId, bytes: number): boolean {
    const cap = this.opts.capacityBps?.(a, b);
    if (cap === undefined) return true;
    const now = this.opts.clock.now;
    const key = `${a}>${b}`;
    const burst = (cap / 8) * 0.05;
    let k = this.buckets.get(key);
    if (!k) this.buckets.set(key, (k = { tokens: burst, at: now }));
    k.tokens = Math.min(burst, k.tokens + ((now - k.at) / 1000) * (cap / 8));
    k.at = now;
    if (k.tokens < bytes) return false;
    k.tokens -= bytes;
    return true;
  }

  carry(from: MemoryLink, b: Uint8Array, reliable: boolean): void {
    const a = from.owner, to = from.peer;
    if (this.down.has(a) || this.down.has(to)) return;
    if (!reliable && this.opts.loss && this.opts.random() < this.opts.loss(a, to)) return;
    if (!reliable && !this.withinCapacity(a, to, b.length)) return;
    this.messages++;
    const copy = b.slice();
    this.opts.clock.after(this.opts.delayMs(a, to), () => {
      if (this.down.has(to) || from.other.state !== "open") return;
      this.routers.get(to)!.receive(a, copy);
    });
  }
}
