// Inside → out: packets the host sent into the TUN, routed by destination to a peer, held or sealed.
//
// Outbound flow (each step names the file that does it; → is a call, ⇐ a return):
//   1. src/tun/reader-worker.ts waits in poll() and reads a batch (ffi/tun.c; with TSO, tun_read_tso
//      cuts the large segments into packets), packs it (src/tun/batch.ts) and posts it to the main thread
//      → src/tun/linux.ts onPackets (CoDel on how long the batch waited, src/tun/codel.ts)
//      → Inside.fromTun here (wired in src/node/node.ts start)
//   2. here, route(): the version and destination (./ip.ts); an overlay IPv6 address names the peer by
//      its node-id bits, an IPv4 destination is a peer's claimed address (./peers.ts); nobody ⇐ dropped
//      and counted; an overlay address of a node we have not met is held (./hold.ts) while the route
//      layer asks our relays whose it is (src/route/discovery.ts); an IPv4 address in our network no
//      known peer waits (./hold.ts) for a member lookup (MemberPort, src/node/lookups.ts); any other address
//      goes to the router advertising the longest matching prefix (SubnetPort, src/node/routes.ts)
//   3. here, send(): the network's firewall notes the flow (PolicyPort: src/node/admission.ts, with the
//      firewalls of src/trust/policy.ts); the route layer marks the peer active; no keys or no path yet
//      ⇒ held (./hold.ts) while a lookup and a direct link are asked for, sent from pathUp() / record()
//      when they come; else the packet joins the batch's run for its peer
//   4. too big for the path's fast channel ⇒ the sender is told (./toobig.ts, through the TUN), the
//      packet still goes
//   5. the run (at the batch's end, or when the next packet is for another peer) → SessionPort.sendBatch
//      → src/session/sessions.ts: sealed with consecutive counters (src/session/keypair.ts sealBatch:
//      the whole run in one call into one buffer through src/session/gcm.ts and ffi/gcm.c's libcrypto,
//      else node:crypto), or held (./hold.ts, the same hold) for the handshake (src/handshake/)
//      → src/route/router.ts sendBatch: the first packet picks the path (choose.ts, steering.ts):
//      direct, or a forward frame to a relay (frame.ts), on the channel frame.ts channelFor names → the
//      peer's link, src/tether/fallback.ts (UDP while it answers, else the WebSocket to a relay,
//      wslink.ts) → src/tether/webrtc.ts (the rest of a direct run as one sendPackets) → fast.ts, the
//      fast channel while it is up and the frame fits (else the packet data channel, werift's SCTP)
//      → its send queue, src/tether/udpsend.ts, flushed once the run is handed over (else at the end
//      of the task): each run of equal-size datagrams in one sendmsg with UDP GSO (src/tether/udpgso.ts),
//      the rest with sendMany ⇐ returns all the way back to fromTun, which goes on with the batch
// ./outside.ts walks the way back in, on the peer. A relay on the way takes the frame in as the peer
// does (./outside.ts, step 1) up to src/route/inbound.ts, which hands it to src/route/forward.ts: the
// router's sendFrame puts it on the next hop's link, as in step 5.
import { inOverlayPrefix6 } from "../identity/address.ts";
import type { NodeId } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import { recordIdentity, type DiscoveryRecord } from "../route/record.ts";
import { DATA_OVERHEAD } from "../session/keypair.ts";
import { Hold } from "./hold.ts";
import { dstOffset, ipv4Key, ipVersion } from "./ip.ts";
import type { PeerTable } from "./peers.ts";
import type { MemberPort, PolicyPort, RoutePort, SessionPort, SubnetPort, TunPort } from "./ports.ts";
import { TooBigNotices } from "./toobig.ts";

export interface InsideStats {
  txPackets: number;
  noRoute: number;
  notIp: number;
}

export interface InsidePorts {
  session: SessionPort;
  route: RoutePort;
  tun: TunPort;
  policy: PolicyPort;
  /** Member lookups for IPv4 addresses of members we never met (none: such packets are dropped). */
  members?: MemberPort;
  /** Subnet routes for destinations outside the overlay (none: such packets are dropped). */
  subnets?: SubnetPort;
}

export class Inside {
  // State, owned by the node's event loop (every call comes from it):
  readonly stats: InsideStats = { txPackets: 0, noRoute: 0, notIp: 0 };
  /** Packets larger than their path's fast channel: their senders are told (they still go, whole). */
  readonly tooBig: TooBigNotices;

  constructor(
    private readonly peers: PeerTable,
    private readonly ports: InsidePorts,
    private readonly log: Log = () => {},
    /** Packets waiting for keys, a path, or an address's owner (the node's one hold, shared with the sessions and member lookups). */
    readonly hold: Hold = new Hold(),
  ) {
    this.tooBig = new TooBigNotices((msg) => ports.tun.writeOne(msg));
  }

  /** Route and hand on one batch from the TUN: consecutive packets to one peer are sealed and sent as one run. */
  fromTun(packets: Uint8Array[]): void {
    this.batching = true;
    try {
      for (const p of packets) this.route(p);
    } finally {
      this.batching = false;
      this.flushRun();
    }
  }

  /** While a TUN batch is routed: the run of packets for one peer not yet handed to the session. */
  private batching = false;
  private runTo: NodeId | undefined;
  private run: Uint8Array[] = [];

  private flushRun(): void {
    const to = this.runTo, run = this.run;
    if (to === undefined) return;
    this.runTo = undefined;
    this.run = [];
    const { session } = this.ports;
    if (run.length > 1 && session.sendBatch) session.sendBatch(to, run);
    else for (const p of run) session.send(to, p);
  }

  private route(p: Uint8Array): void {
    const v = ipVersion(p);
    if (v === 0) {
      this.stats.notIp++;
      return;
    }
    const off = dstOffset(v);
    let peer;
    if (v === 6) {
      if (inOverlayPrefix6(p, off)) peer = this.peers.byAddress6(p, off);
    } else {
      peer = this.peers.byIpv4Key(ipv4Key(p, off));
    }
    if (!peer) {
      if (v === 6 && inOverlayPrefix6(p, off)) return this.toUnknown(p, off);
      if (v === 4 && this.ports.members?.holdForIpv4(p, off)) return;
      const router = this.ports.subnets?.route(p, off, v);
      if (router) {
        this.stats.txPackets++;
        return this.send(router, p);
      }
      this.stats.noRoute++;
      return;
    }
    this.stats.txPackets++;
    this.send(peer.id, p);
  }

  /**
   * A packet for a peer: seal it now if we know its keys and have any path (direct or a relay), else
   * hold it (bounded) while we look its record up through our relays and ask for a direct link.
   */
  send(to: NodeId, packet: Uint8Array): void {
    const { policy, route, session } = this.ports;
    const peer = this.peers.get(to);
    policy.outbound(to, packet);
    route.active(to);
    if (peer) peer.txBytes += packet.length;
    if (peer?.pub && route.hasPath(to)) {
      const limit = route.packetLimit(to);
      if (limit !== undefined && packet.length + DATA_OVERHEAD > limit && this.tooBig.notify(to, packet, limit - DATA_OVERHEAD)) {
        this.log("debug", `packet of ${packet.length} bytes to ${to} is larger than its path takes (${limit - DATA_OVERHEAD}): told the sender`);
      }
      if (!this.batching) return session.send(to, packet);
      if (this.runTo !== to) {
        this.flushRun();
        this.runTo = to;
      }
      this.run.push(packet);
      return;
    }
    this.hold.put("path", to, packet);
    if (!peer?.pub) route.lookup(to);
    route.connect(to);
  }

  /**
   * A packet to an overlay address of a node we have not met: members need not be listed anywhere, so
   * hold it (bounded) and ask our relays whose address it is (only the owner's keys hash to it).
   */
  private toUnknown(packet: Uint8Array, off: number): void {
    if (!this.ports.policy.lookupsAllowed()) {
      this.stats.noRoute++;
      return;
    }
    const bits = packet.slice(off + 6, off + 16);
    if (!this.hold.put("address", Buffer.from(bits).toString("hex"), packet)) return;
    this.ports.route.lookupAddress(bits);
  }

  /** Whether packets wait for `to`'s keys or a path (a link that opens then needs no handshake of its own to start). */
  holds(to: NodeId): boolean {
    return this.hold.has("path", to);
  }

  /** Timers: drop what waited too long (every tick of the node). */
  tick(): void {
    this.hold.expire();
  }

  /** A path came up: send what waits for peers that now have keys and a path. */
  pathUp(): void {
    for (const to of this.hold.keys("path") as NodeId[]) {
      if (this.peers.get(to)?.pub === undefined || !this.ports.route.hasPath(to)) continue;
      for (const p of this.hold.take("path", to)) this.ports.session.send(to, p);
    }
  }

  /** A record our relays gave us: a member's public identity lets us start a session through them. */
  record(r: DiscoveryRecord): void {
    if (r.relay) return;
    // Take the keys only when we wait for them: packets held for this node (by id or by address), or
    // a known peer without keys (an allow-listed one, or one being pinged).
    const address = r.id.slice(0, 20);
    const known = this.peers.get(r.id);
    if (!this.hold.has("address", address) && !this.hold.has("path", r.id) && !(known && !known.pub)) return;
    const pub = recordIdentity(r);
    if (!pub) return;
    this.peers.ensure(pub.id).pub = pub;
    this.ports.session.learn(pub);
    for (const p of this.hold.take("address", address)) this.send(r.id, p);
    this.pathUp();
  }
}
