// An in-memory TUN for tests without root: inject() plays the kernel sending, `written` what we delivered.
import type { TunDevice, TunStats } from "./device.ts";

export interface MemoryTun extends TunDevice {
  inject(packets: Uint8Array[]): void;
  readonly written: Uint8Array[];
  onWrite?: (packet: Uint8Array) => void;
}

export function createMemoryTun(name = "mem0", mtu = 1400): MemoryTun {
  let handler: ((p: Uint8Array[]) => void) | undefined;
  const stats: TunStats = { rxPackets: 0, txPackets: 0, txDropped: 0 };
  let closed = false;
  const tun: MemoryTun = {
    name,
    mtu,
    stats,
    written: [],
    onPackets(h) {
      handler = h;
    },
    inject(packets) {
      if (closed || !handler) return;
      stats.rxPackets += packets.length;
      handler(packets);
    },
    writeOne(p) {
      if (closed) return void stats.txDropped++;
      stats.txPackets++;
      const copy = Uint8Array.from(p);
      tun.written.push(copy);
      tun.onWrite?.(copy);
    },
    write(ps) {
      for (const p of ps) tun.writeOne(p);
    },
    async close() {
      closed = true;
    },
  };
  return tun;
}
