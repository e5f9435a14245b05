// Inside → out: packets the host sent into the TUN are routed by destination to a peer and sealed.
//
// Outbound flow: the TUN reader worker hands over a batch → for each packet, read the version and
// destination → the overlay IPv6 address names the peer directly (its node-id bits), an IPv4
// destination is looked up in the peers' claimed addresses → the session layer seals it to that
// peer (or queues it while a handshake runs). An overlay IPv6 address of a peer we do not know yet goes
// to `unknown6` (the node looks it up through its relays), an IPv4 address of no known peer to
// `unknown4` (the node asks its relays which member holds it); any other address goes to the router
// advertising the longest matching prefix (`viaRoute`). Packets to nobody are dropped and counted.
import { inOverlayPrefix6 } from "../identity/address.ts";
import type { NodeId } from "../identity/identity.ts";
import type { PeerTable } from "./peers.ts";
import { dstOffset, ipv4Key, ipVersion } from "./ip.ts";

export interface InsideStats {
  txPackets: number;
  noRoute: number;
  notIp: number;
}

export class Inside {
  readonly stats: InsideStats = { txPackets: 0, noRoute: 0, notIp: 0 };

  constructor(
    private readonly peers: PeerTable,
    private readonly send: (to: NodeId, packet: Uint8Array) => void,
    /** A packet to an overlay IPv6 address of no known peer: the node may look its owner up. */
    private readonly unknown6?: (packet: Uint8Array, dstOffset: number) => void,
    /** A packet to an IPv4 address of no known peer: the node may look up which member holds it (true when held). */
    private readonly unknown4?: (packet: Uint8Array, dstOffset: number) => boolean,
    /** A packet to an address outside the overlay: the router advertising the best-matching prefix, if any (src/route/subnets.ts). */
    private readonly viaRoute?: (packet: Uint8Array, dstOffset: number, v: 4 | 6) => NodeId | undefined,
  ) {}

  /** Route and hand on one batch from the TUN. */
  fromTun(packets: Uint8Array[]): void {
    for (const p of packets) this.route(p);
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
      if (v === 6 && this.unknown6 && inOverlayPrefix6(p, off)) return this.unknown6(p, off);
      if (v === 4 && this.unknown4?.(p, off)) return;
      const router = this.viaRoute?.(p, off, v);
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
}
