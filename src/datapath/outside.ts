// Out → inside: what the route layer delivers to this node, opened, checked (the key is the route) and
// written to the TUN.
//
// Inbound flow (each step names the file that does it; → is a call, ⇐ a return):
//   1. the peer's link: the fast channel (src/tether/fast.ts, hooked on werift's UDP socket: datagrams
//      only from ICE-checked addresses; a UDP GRO read cut back into datagrams by src/tether/gro.ts;
//      forward frames checked against their per-link tag and replay window) or a data channel
//      (src/tether/webrtc.ts) → src/tether/fallback.ts (the WebSocket to a relay, wslink.ts, the other
//      way in; its beats stay there) → src/route/router.ts receive (a link listener since
//      src/node/peering.ts linked()) → src/route/inbound.ts: hop frames stay in the route layer (probes,
//      records, lookups), as do delivery reports; a forward frame for another goes to
//      src/route/forward.ts; a forward frame for us (src/route/frame.ts) or a direct payload →
//      (a GRO read of session data goes up as one batch: fast.ts deliverMany → fallback.ts →
//      router.ts receiveBatch → inbound.ts receiveBatch, the link's bookkeeping once → fromRouteBatch
//      here, which opens each packet as fromRoute does and tells the route layer once per batch)
//   2. Outside.fromRoute here: a signal through relays goes to the link manager (ports.signal); anything
//      else → SessionPort.receive → src/session/sessions.ts: handshake messages (src/handshake/), or
//      data: keypair by index → replay window (src/session/replay.ts) → AES-GCM open in place (keypair.ts,
//      through src/session/gcm.ts and ffi/gcm.c where libcrypto is there, else node:crypto)
//   3. → Outside.fromPeer here: a non-IP payload is an overlay control message (ping, revocation,
//      policy) for the node (src/node/overlay.ts, src/node/control.ts); an IP packet marks the peer
//      active, then its inner source must belong to the identity that sealed it (its overlay IPv6
//      address, its claimed IPv4 address, or a subnet its certificate grants; ./peers.ts) and its
//      destination must be us, or a prefix we route for (a subnet router's LAN, an exit's uplink: the
//      kernel forwards it; src/node/routes.ts)
//   4. the network's firewall has its say (PolicyPort: src/node/admission.ts, src/trust/policy.ts)
//   5. TunPort.writeOne (./ports.ts TunSlot) → src/tun/linux.ts: into the ring (src/tun/ring.ts), the
//      writer woken once per turn of the event loop ⇐ returns to fromPeer ⇐ sessions.ts ⇐ fromRoute,
//      which tells the route layer what opened (delivery reports, liveness) ⇐ returns all the way back
//      to the link. Apart, src/tun/writer-worker.ts takes the ring's packets (CoDel, src/tun/codel.ts)
//      and writes them to the device (ffi/tun.c: tun_write_gro hands the kernel a TCP stream's
//      consecutive segments as one large packet)
// Anything dropped on the way is counted. ./inside.ts walks the way out.
import { equal16 } from "../identity/address.ts";
import type { NodeId } from "../identity/identity.ts";
import { TYPE_SIGNAL } from "../route/frame.ts";
import { dstOffset, inPrefix, ipv4Key, ipVersion, srcOffset } from "./ip.ts";
import type { PeerTable } from "./peers.ts";
import type { PolicyPort, RoutePort, SessionPort, TunPort } from "./ports.ts";

export interface OutsideStats {
  rxPackets: number;
  spoofed: number;
  notForUs: number;
  policyDropped: number;
}

export interface LocalAddresses {
  ipv6: Uint8Array;
  /** Our IPv4 addresses as numbers (one per network, or the configured one). */
  ipv4Keys: number[];
  /** Whether we forward `from`'s packet to the destination at `p[off]` (a subnet router's LAN; an exit node's uplink, for those who may use it). */
  forwards?: (from: NodeId, p: Uint8Array, off: number, v: 4 | 6) => boolean;
  /** Whether `from` is the exit node we use, so the source at `p[off]` (the internet) is its to send from. */
  fromExit?: (from: NodeId, p: Uint8Array, off: number, v: 4 | 6) => boolean;
}

export interface OutsidePorts {
  session: Pick<SessionPort, "receive">;
  route: Pick<RoutePort, "active" | "opened">;
  tun: TunPort;
  policy: Pick<PolicyPort, "inbound">;
  /** An overlay control message (not an IP packet) from an authenticated peer. */
  control(from: NodeId, payload: Uint8Array): void;
  /** A signed signal envelope that came through relays (for the link manager), on the link to `link`. */
  signal(from: NodeId, envelope: Uint8Array, link: NodeId): void;
  /** A packet whose inner source is not its sender's (dropped; for the log). */
  spoofed?(from: NodeId, packet: Uint8Array): void;
}

export class Outside {
  // State, owned by the node's event loop (every call comes from it):
  readonly stats: OutsideStats = { rxPackets: 0, spoofed: 0, notForUs: 0, policyDropped: 0 };

  constructor(
    private readonly peers: PeerTable,
    private readonly local: LocalAddresses,
    private readonly ports: OutsidePorts,
  ) {}

  /** An end-to-end payload the route layer delivered from `src`: a session packet, or a signal through relays. */
  fromRoute(src: NodeId, inner: Uint8Array, link: NodeId = src, via?: NodeId): void {
    if (inner[0] === TYPE_SIGNAL) return this.ports.signal(src, inner.subarray(1), link);
    // Budgets and counts follow what is proven: the link it came on, and the peer whose keys opened it.
    // Only IP traffic counts as a delivery (fromPeer notes it while the session opens the packet):
    // keepalives, pings and the delivery reports themselves do not, or reports would answer reports.
    this.openedIp = false;
    const opened = this.ports.session.receive(inner, src, link);
    if (opened) this.ports.route.opened(opened, link, via, this.openedIp ? inner.length : 0);
  }

  /** Whether the payload the session just opened (inside fromRoute) was an IP packet. */
  private openedIp = false;
  /** Inside fromRouteBatch: the peer whose IP packets were taken (marked active once, at the end). */
  private batching = false;
  private activeFrom: NodeId | undefined;

  /**
   * Session data packets from `src` that came together (one GRO read) on `link`, through relay `via`
   * (undefined: direct): each is opened and
   * checked as fromRoute does, and what fromRoute tells the route layer per packet (opened, active) is
   * told once per peer for the batch, with the bytes of all its IP packets.
   */
  fromRouteBatch(src: NodeId, inners: Uint8Array[], link: NodeId = src, via?: NodeId): void {
    const { session, route } = this.ports;
    let opened: NodeId | undefined, bytes = 0;
    this.batching = true;
    this.activeFrom = undefined;
    try {
      for (const inner of inners) {
        this.openedIp = false;
        const who = session.receive(inner, src, link);
        if (who === undefined) continue;
        if (opened !== undefined && who !== opened) {
          route.opened(opened, link, via, bytes);
          bytes = 0;
        }
        opened = who;
        if (this.openedIp) bytes += inner.length;
      }
    } finally {
      this.batching = false;
    }
    if (opened !== undefined) route.opened(opened, link, via, bytes);
    if (this.activeFrom !== undefined) route.active(this.activeFrom);
  }

  /** One authenticated, decrypted payload from `from`. */
  fromPeer(from: NodeId, payload: Uint8Array): void {
    const peer = this.peers.get(from);
    const nibble = payload[0] >> 4;
    if (nibble === 4 || nibble === 6) {
      this.openedIp = true;
      if (!this.batching) this.ports.route.active(from);
      else if (this.activeFrom !== from) {
        if (this.activeFrom !== undefined) this.ports.route.active(this.activeFrom);
        this.activeFrom = from;
      }
      if (peer) peer.rxBytes += payload.length;
    }
    const v = ipVersion(payload);
    if (v === 0) {
      this.ports.control(from, payload);
      return;
    }
    const s = srcOffset(v), d = dstOffset(v);
    let owned = false, mine = false;
    if (v === 6) {
      owned = peer !== undefined && equal16(payload, s, peer.ipv6Bytes);
      mine = equal16(payload, d, this.local.ipv6);
    } else {
      const ownV4 = peer?.ipv4Key;
      owned = ownV4 !== undefined && ipv4Key(payload, s) === ownV4;
      mine = this.local.ipv4Keys.includes(ipv4Key(payload, d));
    }
    // A subnet router (its certificate lists subnets) may also send from those prefixes.
    if (!owned && peer?.subnets) owned = peer.subnets.some((n) => n.family === v && inPrefix(payload, s, n.bytes, n.prefix));
    if (!owned && this.local.fromExit?.(from, payload, s, v as 4 | 6)) owned = true;
    if (!owned) {
      this.stats.spoofed++;
      if (peer) peer.spoofDrops++;
      this.ports.spoofed?.(from, payload);
      return;
    }
    if (!mine && this.local.forwards?.(from, payload, d, v as 4 | 6)) mine = true;
    if (!mine) {
      this.stats.notForUs++;
      return;
    }
    if (!this.ports.policy.inbound(from, payload)) {
      this.stats.policyDropped++;
      return;
    }
    this.stats.rxPackets++;
    this.ports.tun.writeOne(payload);
  }
}
