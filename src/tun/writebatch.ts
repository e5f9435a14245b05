// Writing a batch from the ring to the device, shared by ./writer-worker.ts and ./duplex-worker.ts: CoDel
// (./codel.ts) on each packet's time in the ring, then one call into ffi/tun.c's tun_write_gro on a device
// with virtio-net headers (consecutive TCP segments handed to the kernel as one large packet), else a write
// per packet; after a batch holding NAP_MIN packets or more that are not TCP the writer naps NAP_US (see
// ./writer-worker.ts for why).
import { ptr, type Pointer } from "bun:ffi";
import { tunLib, VNET_HDR_LEN } from "./ffi.ts";
import { sharedNow } from "./ring.ts";
import { Codel } from "./codel.ts";

export const BATCH = 64;
/** The nap after a batch of datagrams, in µs (TRELLIS_WRITER_NAP_US; 0: none), and how many earn one. */
const NAP_US = Number(process.env.TRELLIS_WRITER_NAP_US ?? 50);
const NAP_MIN = 16;

/** What RingReader.drain needs to write one batch: `start` before it, `collect` per packet, `done` after. */
export interface BatchWriter {
  start(): void;
  collect(off: number, len: number, pushedAt: number): void;
  done(): void;
}

/**
 * A batch writer for device `fd` over the ring's data bytes `data`; `control` words: [1] counts packets the
 * device refused, [2] packets CoDel dropped.
 */
export function batchWriter(fd: number, vnet: boolean, data: Uint8Array, control: Int32Array): BatchWriter {
  const lib = tunLib();
  const base = ptr(data);
  const refused = (k: number) => k > 0 && Atomics.add(control, 1, k);
  const offs = new Int32Array(BATCH), lens = new Int32Array(BATCH);
  const scratch = new Uint8Array(65536 + VNET_HDR_LEN);
  const codel = new Codel();
  let n = 0, now = 0, datagrams = 0;
  // ptr() is taken per call on purpose: hoisting ptr(offs)/ptr(lens) out of the loop broke GRO writes
  // (the kernel got the data but TCP never saw it), so those pointers went stale between calls.
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
  return {
    start() {
      n = 0;
      now = 0;
      datagrams = 0;
    },
    collect(off, len, pushedAt) {
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
    },
    done() {
      if (n === 0) return;
      write();
      if (napMs > 0 && datagrams >= NAP_MIN) Atomics.wait(napWord, 0, 0, napMs);
    },
  };
}
