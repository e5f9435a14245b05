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
import { ptr, type Pointer } from "bun:ffi";
import { tunLib, tunLibKind, VNET_HDR_LEN } from "./ffi.ts";
import { RingReader, sharedNow } from "./ring.ts";
import { Codel } from "./codel.ts";

declare var self: Worker;

export interface WriterStart {
  fd: number;
  ring: SharedArrayBuffer;
  /** Int32 words: [0] = 1 asks the writer to stop; [1] counts packets the device refused; [2] packets CoDel dropped. */
  control: SharedArrayBuffer;
  /** The device takes a virtio-net header before each packet. */
  vnet: boolean;
}

const BATCH = 64;
/** The nap after a batch of datagrams, in µs (TRELLIS_WRITER_NAP_US; 0: none), and how many earn one. */
const NAP_US = Number(process.env.TRELLIS_WRITER_NAP_US ?? 50);
const NAP_MIN = 16;

self.onmessage = (e: MessageEvent<WriterStart>) => {
  const { fd, vnet } = e.data;
  const lib = tunLib();
  self.postMessage({ ready: tunLibKind });
  const ring = new RingReader(e.data.ring);
  const control = new Int32Array(e.data.control);
  const data = new Uint8Array(e.data.ring, RingReader.dataOffset);
  const base = ptr(data);
  const refused = (n: number) => n > 0 && Atomics.add(control, 1, n);
  const offs = new Int32Array(BATCH), lens = new Int32Array(BATCH);
  const scratch = new Uint8Array(65536 + VNET_HDR_LEN);
  const codel = new Codel();
  let n = 0, now = 0, datagrams = 0;
  const collect = (off: number, len: number, pushedAt: number) => {
    // The clock is read once per batch, after drain's wait (up to 200 ms on an idle ring): read before
    // it, a packet pushed during the wait would seem to have waited less than nothing.
    if (now === 0) now = sharedNow();
    if (codel.shouldDrop(now - pushedAt, now)) {
      Atomics.add(control, 2, 1);
      return;
    }
    offs[n] = off;
    lens[n++] = len;
    // Not TCP (IPv4 protocol, IPv6 next header): written one by one, each a wake-up (see NAP_US).
    if (data[off + ((data[off] >> 4) === 4 ? 9 : 6)] !== 6) datagrams++;
  };
  // ptr() is taken per call on purpose: hoisting ptr(offs)/ptr(lens) out of the loop broke GRO writes
  // here (the kernel got the data but TCP never saw it), so those pointers went stale between calls.
  const write = vnet && lib.tun_write_gro
    ? () => refused(lib.tun_write_gro!(fd, base, ptr(offs), ptr(lens), n, ptr(scratch)))
    : vnet
      ? () => {
          // A build without the C helper: the (zero) header, then the packet.
          for (let i = 0; i < n; i++) {
            scratch.fill(0, 0, VNET_HDR_LEN);
            scratch.set(data.subarray(offs[i], offs[i] + lens[i]), VNET_HDR_LEN);
            refused(lib.tun_write(fd, scratch, VNET_HDR_LEN + lens[i]) < 0 ? 1 : 0);
          }
        }
      : () => {
          for (let i = 0; i < n; i++) refused(lib.tun_write(fd, ((base as number) + offs[i]) as Pointer as unknown as Uint8Array, lens[i]) < 0 ? 1 : 0);
        };
  const napWord = new Int32Array(new SharedArrayBuffer(4));
  const napMs = NAP_US > 0 ? NAP_US / 1000 : 0;
  const done = () => {
    if (n === 0) return;
    write();
    if (napMs > 0 && datagrams >= NAP_MIN) Atomics.wait(napWord, 0, 0, napMs);
  };
  while (Atomics.load(control, 0) === 0) {
    n = 0;
    now = 0;
    datagrams = 0;
    ring.drain(collect, BATCH, 200, done);
  }
  self.postMessage({ stopped: true });
};
