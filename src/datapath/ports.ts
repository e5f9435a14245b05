// The ports of the data path: what inside.ts and outside.ts need of the session, route and TUN layers
// and of the network's policy, each a small interface with an in-memory double (the Memory* classes
// below) so the data path is tested without sessions, routers or a kernel.
import type { NodeId, PublicIdentity } from "../identity/identity.ts";

/** The session layer (src/session/sessions.ts). */
export interface SessionPort {
  /** Seal `payload` for `to` and hand it to the route layer (a handshake first, when keys are missing). */
  send(to: NodeId, payload: Uint8Array): void;
  /** send() for a run of payloads to one peer (from one TUN read), sealed and handed on as one batch. */
  sendBatch?(to: NodeId, payloads: Uint8Array[]): void;
  /**
   * Open a session packet claimed to be from `via` that came in on the link to `link` (decrypted payloads
   * come back through Outside.fromPeer); returns the peer whose keys opened a data packet.
   */
  receive(packet: Uint8Array, via: NodeId, link?: NodeId): NodeId | undefined;
  /** A peer's public identity: needed before a handshake to it can start. */
  learn(remote: PublicIdentity): void;
}

/** The route layer (src/route/router.ts) and the links under it. */
export interface RoutePort {
  /** Whether any path (direct or through a relay) to `to` is live now. */
  hasPath(to: NodeId): boolean;
  /** The largest session packet the path to `to` takes whole now; undefined when any size goes. */
  packetLimit(to: NodeId): number | undefined;
  /** IP traffic with `peer`: keeps its link from closing as idle. */
  active(peer: NodeId): void;
  /** The session opened a data packet from `peer` (came in on `link`, first relay `via`): it counts now. */
  opened(peer: NodeId, link: NodeId, via: NodeId | undefined, bytes: number): void;
  /** Ask our relays for `id`'s record (its keys). */
  lookup(id: NodeId): void;
  /** Ask our relays who owns an overlay address (its 10 node-id bytes). */
  lookupAddress(bits: Uint8Array): void;
  /** Want a direct link to `to`. */
  connect(to: NodeId): void;
}

/** The TUN device (src/tun/device.ts; src/tun/memory.ts is its double). */
export interface TunPort {
  writeOne(packet: Uint8Array): void;
}

/** A TUN plugged in later (the node opens its device in start()); writes before then are dropped. */
export class TunSlot implements TunPort {
  device?: TunPort;
  writeOne(packet: Uint8Array): void {
    this.device?.writeOne(packet);
  }
}

/** The network's say on traffic (src/trust/policy.ts firewalls), and on looking strangers up. */
export interface PolicyPort {
  /** A packet we send to `to` (a stateful firewall records the flow). */
  outbound(to: NodeId, packet: Uint8Array): void;
  /** Whether a packet from `from` may reach the TUN. */
  inbound(from: NodeId, packet: Uint8Array): boolean;
  /** Whether an overlay address of a node we have not met may be looked up (we are in a network). */
  lookupsAllowed(): boolean;
}

/** Member lookups (src/node/lookups.ts): a packet to an IPv4 address no known peer holds may wait while our relays are asked which member holds it. */
export interface MemberPort {
  /** Hold `packet` (its IPv4 destination at `dstOffset`) for a lookup; false when it is not for one (dropped). */
  holdForIpv4(packet: Uint8Array, dstOffset: number): boolean;
}

/** Subnet routes (src/node/routes.ts): the router advertising the longest prefix matching a destination outside the overlay. */
export interface SubnetPort {
  route(packet: Uint8Array, dstOffset: number, v: 4 | 6): NodeId | undefined;
}

/** Records what the data path asked of the session layer. */
export class MemorySession implements SessionPort {
  readonly sent: [NodeId, Uint8Array][] = [];
  readonly received: [NodeId, Uint8Array][] = [];
  readonly learned: PublicIdentity[] = [];
  /** Each sendBatch call: the peer and how many packets. */
  readonly batches: [NodeId, number][] = [];
  send(to: NodeId, payload: Uint8Array): void {
    this.sent.push([to, payload]);
  }
  sendBatch(to: NodeId, payloads: Uint8Array[]): void {
    this.batches.push([to, payloads.length]);
    for (const p of payloads) this.sent.push([to, p]);
  }
  receive(packet: Uint8Array, via: NodeId): NodeId | undefined {
    this.received.push([via, packet]);
    return undefined;
  }
  learn(remote: PublicIdentity): void {
    this.learned.push(remote);
  }
}

/** A route layer with the paths and limits a test sets, recording what was asked. */
export class MemoryRoute implements RoutePort {
  readonly paths = new Set<NodeId>();
  readonly limits = new Map<NodeId, number>();
  readonly activity: NodeId[] = [];
  readonly lookups: NodeId[] = [];
  readonly addressLookups: Uint8Array[] = [];
  readonly connects: NodeId[] = [];
  hasPath(to: NodeId): boolean {
    return this.paths.has(to);
  }
  packetLimit(to: NodeId): number | undefined {
    return this.limits.get(to);
  }
  active(peer: NodeId): void {
    this.activity.push(peer);
  }
  readonly opens: NodeId[] = [];
  opened(peer: NodeId): void {
    this.opens.push(peer);
  }
  lookup(id: NodeId): void {
    this.lookups.push(id);
  }
  lookupAddress(bits: Uint8Array): void {
    this.addressLookups.push(bits);
  }
  connect(to: NodeId): void {
    this.connects.push(to);
  }
}

/** A policy that lets everything through; `members` says whether strangers may be looked up. */
export class OpenPolicy implements PolicyPort {
  constructor(private readonly members = true) {}
  outbound(): void {}
  inbound(): boolean {
    return true;
  }
  lookupsAllowed(): boolean {
    return this.members;
  }
}
