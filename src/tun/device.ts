// The TUN seam: a device that hands over batches of IP packets and takes packets to deliver.
export interface TunStats {
  rxPackets: number;
  /** Read from the device and dropped before handling (CoDel on a standing queue), where counted. */
  rxDropped?: number;
  txPackets: number;
  txDropped: number;
  /** Where txDropped's packets went, where counted: the ring to the writer full, CoDel in the writer, the device refused them. */
  txDrops?: { ringFull: number; codel: number; refused: number };
  /**
   * Packets the kernel dropped on the way to us (its queue in front of our reads full: tx_dropped of the
   * interface, as `ip -s link` shows it), where the system says.
   */
  kernelDropped?: number;
}

export interface TunDevice {
  readonly name: string;
  readonly mtu: number;
  /**
   * Deliver batches of packets read from the device. A packet is valid until the handler returns (its
   * memory is read into again): whoever keeps one longer keeps a copy.
   */
  onPackets(handler: (packets: Uint8Array[]) => void): void;
  /** Write packets to the device (non-blocking; a full device drops and counts). */
  write(packets: Uint8Array[]): void;
  writeOne(packet: Uint8Array): void;
  readonly stats: TunStats;
  /** Offloads the device uses ("tun gro": coalesced TCP writes; "tun tso": large reads cut here), for status. */
  readonly offload?: string[];
  /** Stop reading and close the device; the kernel removes the interface. */
  close(): Promise<void>;
}

export interface TunOptions {
  name: string;
  mtu: number;
  ipv6: string;
  prefix6: number;
  ipv4?: string;
  prefix4?: number;
  /** More IPv4 addresses (one per further network), each with its prefix length. */
  moreIpv4?: { address: string; prefix: number }[];
}

export type TunErrorCode = "permission" | "no-device" | "busy" | "configure" | "io";
export class TunError extends Error {
  constructor(readonly code: TunErrorCode, message: string) {
    super(message);
    this.name = "TunError";
  }
}
