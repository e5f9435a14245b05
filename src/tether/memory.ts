// In-memory links for whole nodes in one process (tests): the Links a Node takes, without werift or seeds.
//
// A MemoryNet joins the nodes made with its factory(). connect() links two started nodes at once when
// both admit each other (each one's accept() sees the other's public identity and certificates, as
// signalling would show them), then hands both sides the link (onIdentity, onLink), as the LinkManager
// does. Frames are copied and delivered on a later microtask, in order, none lost; cut() closes a link
// and refuses new ones between the pair until heal(). Relays named in the options are announced to every
// node that starts, as a seed announces its relay.
import type { NodeId, PublicIdentity } from "../identity/identity.ts";
import type { LinkManagerOptions, Links } from "./links.ts";
import { LinkListeners } from "./listeners.ts";
import type { Link } from "./webrtc.ts";

export interface MemoryNetOptions {
  /** Relays every node hears of when it starts (as from a seed). */
  relays?: NodeId[];
}

export class MemoryNet {
  // State, owned by the test's event loop:
  /** Started nodes by id. */
  private readonly nodes = new Map<NodeId, MemoryLinks>();
  /** Pairs ("a|b", a < b) that may not link. */
  private readonly blocked = new Set<string>();

  constructor(readonly opts: MemoryNetOptions = {}) {}

  /** A link factory for Node's parts: each node's links join this net. */
  factory(): (opts: LinkManagerOptions) => Links {
    return (opts) => new MemoryLinks(this, opts);
  }

  /** Close the link between a and b, and refuse new ones until heal(). */
  cut(a: NodeId, b: NodeId): void {
    this.blocked.add(pair(a, b));
    this.nodes.get(a)?.link(b)?.close("cut");
  }

  heal(a: NodeId, b: NodeId): void {
    this.blocked.delete(pair(a, b));
  }

  /** @internal */
  join(n: MemoryLinks): void {
    this.nodes.set(n.self, n);
  }

  /** @internal */
  leave(n: MemoryLinks): void {
    if (this.nodes.get(n.self) === n) this.nodes.delete(n.self);
  }

  /** @internal Link `a` to `peer` when both are up, allowed, and admit each other. */
  connect(a: MemoryLinks, peer: NodeId): void {
    const b = this.nodes.get(peer);
    if (!b || b === a || this.blocked.has(pair(a.self, peer)) || a.link(peer) || b.link(a.self)) return;
    if (!a.admits(b) || !b.admits(a)) return;
    const ab = new MemoryLink(peer), ba = new MemoryLink(a.self);
    ab.other = ba;
    ba.other = ab;
    a.opened(ab, b.remote);
    b.opened(ba, a.remote);
  }
}

const pair = (a: NodeId, b: NodeId) => (a < b ? `${a}|${b}` : `${b}|${a}`);

class MemoryLinks implements Links {
  private readonly links = new Map<NodeId, MemoryLink>();
  private linkCbs: ((link: Link, remote: PublicIdentity) => void)[] = [];
  private identityCbs: ((remote: PublicIdentity) => void)[] = [];
  private seedRelayCbs: ((relay: NodeId) => void)[] = [];
  private up = false;

  constructor(private readonly net: MemoryNet, private readonly opts: LinkManagerOptions) {}

  get self(): NodeId {
    return this.opts.identity.public.id;
  }

  get remote(): PublicIdentity {
    return this.opts.identity.public;
  }

  async start(): Promise<void> {
    this.up = true;
    this.net.join(this);
    for (const r of this.net.opts.relays ?? []) if (r !== this.self) for (const cb of this.seedRelayCbs) cb(r);
  }

  async stop(): Promise<void> {
    this.up = false;
    for (const l of [...this.links.values()]) l.close("node stopping");
    this.net.leave(this);
  }

  get count(): number {
    return this.links.size;
  }

  link(peer: NodeId): Link | undefined {
    return this.links.get(peer);
  }

  connect(peer: NodeId): void {
    if (this.up && peer !== this.self) this.net.connect(this, peer);
  }

  disconnect(peer: NodeId, reason: string): void {
    this.links.get(peer)?.close(reason);
  }

  handleSignal(): void {}

  onLink(cb: (link: Link, remote: PublicIdentity) => void): void {
    this.linkCbs.push(cb);
  }

  onIdentity(cb: (remote: PublicIdentity) => void): void {
    this.identityCbs.push(cb);
  }

  onSeedRelay(cb: (relay: NodeId) => void): void {
    this.seedRelayCbs.push(cb);
  }

  /** Whether this node admits `other` (its accept() on the other's identity and certificates). */
  admits(other: MemoryLinks): boolean {
    const verdict = this.opts.accept(other.remote, other.opts.proofs?.() ?? []);
    if (verdict !== true) this.opts.log?.("info", `memory link from ${other.self} refused: ${verdict}`);
    return verdict === true;
  }

  opened(link: MemoryLink, remote: PublicIdentity): void {
    this.links.set(link.peer, link);
    link.onClose(() => {
      if (this.links.get(link.peer) === link) this.links.delete(link.peer);
    });
    for (const cb of this.identityCbs) cb(remote);
    for (const cb of this.linkCbs) cb(link, remote);
  }
}

class MemoryLink extends LinkListeners implements Link {
  readonly fastMtu = undefined;
  readonly fastStats = undefined;
  other!: MemoryLink;

  constructor(readonly peer: NodeId) {
    super();
  }

  sendProbe(b: Uint8Array): boolean {
    return this.sendPacket(b);
  }

  sendPacket(b: Uint8Array): boolean {
    if (this.state !== "open") return false;
    this.stats.txPackets++;
    this.other.arrive(b.slice(), false);
    return true;
  }

  sendControl(b: Uint8Array): void {
    if (this.state === "open") this.other.arrive(b.slice(), true);
  }

  private arrive(b: Uint8Array, control: boolean): void {
    queueMicrotask(() => this.deliver(b, control));
  }

  override onOpen(cb: () => void): void {
    if (this.state === "open") queueMicrotask(cb);
  }

  /** Closing one end closes the other (after this end's listeners heard). */
  override close(reason = "closed"): void {
    if (this.state === "closed") return;
    super.close(reason);
    this.other.close(reason);
  }
}
