// The TUN writer: a Worker that takes packets from a shared ring (./ring.ts) and writes them to the
// device. A write to a TUN runs the kernel's receive path (TCP included) in the writing thread, so
// writing here leaves the node's event loop free and puts a second core to work. On a device with
// virtio-net headers each batch goes to ffi/tun.c's tun_write_gro, which hands the kernel consecutive
// segments of a TCP stream as one large packet (GRO), so its TCP stack does a fraction of the work.
// CoDel (./codel.ts) keeps the queue in the ring short under load.
//
// After a batch holding NAP_MIN packets or more that are not TCP the writer sleeps NAP_US. Each write
// wakes the application that reads the packets (iperf3) with a sync wake-up, which Linux answers by
// putting it on this core, expecting the waker to sleep soon; a writer that goes on through its backlog
// keeps it waiting there, and its socket overflows (iperf3's UDP socket holds ~90 packets at the
// default 212 KB: nstat UdpRcvbufErrors on the receiving side were nearly all the loss of UDP through
// the tunnel). TCP is left out: its segments go up coalesced (one wake-up per run, not per packet), its
// sender slows down instead of losing, and a nap per 64 packets would cap a stream near 4 Gbit/s.
import { tunLib, tunLibKind } from "./ffi.ts";
import { RingReader } from "./ring.ts";
import { BATCH, batchWriter } from "./writebatch.ts";

declare var self: Worker;

export interface WriterStart {
  fd: number;
  ring: SharedArrayBuffer;
  /** Int32 words: [0] = 1 asks the writer to stop; [1] counts packets the device refused; [2] packets CoDel dropped. */
  control: SharedArrayBuffer;
  /** The device takes a virtio-net header before each packet. */
  vnet: boolean;
}

self.onmessage = (e: MessageEvent<WriterStart>) => {
  const { fd, vnet } = e.data;
  tunLib(); // the C helper, loaded before we say which (tunLibKind)
  self.postMessage({ ready: tunLibKind });
  const ring = new RingReader(e.data.ring);
  const control = new Int32Array(e.data.control);
  const w = batchWriter(fd, vnet, new Uint8Array(e.data.ring, RingReader.dataOffset), control);
  const collect = w.collect, done = w.done;
  while (Atomics.load(control, 0) === 0) {
    w.start();
    ring.drain(collect, BATCH, 200, done);
  }
  self.postMessage({ stopped: true });
};
