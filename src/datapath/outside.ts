// Out → inside: a decrypted payload from a peer is checked (the key is the route) and written to the TUN.
//
// Inbound flow: the session layer authenticated and decrypted a payload from `from` → if it is an IP
// packet, its inner source address must belong to that identity (the IPv6 address derived from its
// node id, or the IPv4 address it claimed) and its destination must be this node, or a prefix this
// node routes for (a subnet router's LAN; the kernel forwards it) → write to the TUN.
// Anything else is dropped and counted; non-IP payloads are overlay control messages for the node.
import { equal16 } from "../identity/address.ts";
import type { NodeId } from "../identity/identity.ts";
import type { PeerTable } from "./peers.ts";
import { dstOffset, inPrefix, ipv4Key, ipVersion, srcOffset } from "./ip.ts";

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
  /** Whether we forward to the destination at `p[off]` (a subnet router's LAN, an exit node's uplink). */
  forwards?: (p: Uint8Array, off: number, v: 4 | 6) => boolean;
}

export class Outside {
  readonly stats: OutsideStats = { rxPackets: 0, spoofed: 0, notForUs: 0, policyDropped: 0 };

  constructor(
    private readonly peers: PeerTable,
    private readonly local: LocalAddresses,
    private readonly write: (packet: Uint8Array) => void,
    private readonly control: (from: NodeId, payload: Uint8Array) => void,
    private readonly onSpoof: (from: NodeId, packet: Uint8Array) => void = () => {},
    /** The network policy's say on a packet (stateful firewall); absent = allow. */
    private readonly policy: (from: NodeId, packet: Uint8Array) => boolean = () => true,
  ) {}

  /** One authenticated payload from `from`. */
  fromPeer(from: NodeId, payload: Uint8Array): void {
    const v = ipVersion(payload);
    if (v === 0) {
      this.control(from, payload);
      return;
    }
    const peer = this.peers.get(from);
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
    if (!owned) {
      this.stats.spoofed++;
      if (peer) peer.spoofDrops++;
      this.onSpoof(from, payload);
      return;
    }
    if (!mine && this.local.forwards?.(payload, d, v as 4 | 6)) mine = true;
    if (!mine) {
      this.stats.notForUs++;
      return;
    }
    if (!this.policy(from, payload)) {
      this.stats.policyDropped++;
      return;
    }
    this.stats.rxPackets++;
    this.write(payload);
  }
}
