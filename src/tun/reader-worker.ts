// The TUN reader: a Worker that blocks in poll() and drains packets in batches, so the node's event
// loop never waits on the device. Each batch goes to the main thread as one transferred buffer, stamped
// with the time it was read: the main thread runs CoDel on that wait (./linux.ts), so a standing queue
// is met with drops TCP reads as congestion. Past a few batches in flight the reader stops reading, and
// the kernel's queue (and its drops) takes over.
import { ptr } from "bun:ffi";
import { tunLib, tunLibKind } from "./ffi.ts";
import { packBatch } from "./batch.ts";
import { sharedNow } from "./ring.ts";

declare var self: Worker;

export interface ReaderStart {
  fd: number;
  stride: number;
  max: number;
  /**
   * Int32 words over a SharedArrayBuffer: [0] = 1 asks the reader to stop; [1] counts batches posted and
   * not yet handled by the main thread (it subtracts, and notifies when [2] says the reader waits).
   */
  stop: SharedArrayBuffer;
  /** At most this many batches in flight: past it the reader leaves packets in the device's queue. */
  inflight: number;
  /** Bytes before each packet to leave out (the virtio-net header, when the device has one). */
  skip: number;
  /** The device hands over large segments (TSO/USO): read with tun_read_tso, which cuts them into packets. */
  tso: boolean;
}

self.onmessage = (e: MessageEvent<ReaderStart | { prepare: true }>) => {
  // First the helper, built while the node still runs as root (TinyCC may not build it after the
  // privileges are dropped; the libc fallback cannot cut large segments).
  if ("prepare" in e.data) {
    tunLib();
    self.postMessage({ ready: tunLibKind, tso: tunLib().tun_read_tso !== undefined });
    return;
  }
  const { fd, stride, max, skip, inflight, tso } = e.data;
  const stop = new Int32Array(e.data.stop);
  const lib = tunLib();
  const buf = new Uint8Array(stride * max);
  const lens = new Int32Array(max);
  const segs = new Int32Array(2);
  const bufPtr = ptr(buf), lensPtr = ptr(lens), segsPtr = ptr(segs);
  const read = tso && lib.tun_read_tso
    ? () => lib.tun_read_tso!(fd, bufPtr, stride, lensPtr, max, 200, segsPtr)
    : () => lib.tun_read_batch(fd, bufPtr, stride, lensPtr, max, 200);
  while (Atomics.load(stop, 0) === 0) {
    // Backpressure: while the main thread is behind, the kernel's queue (and its drops, which TCP reads
    // as congestion) stands in for an unbounded queue of messages, and latency under load stays low.
    const waiting = Atomics.load(stop, 1);
    if (waiting >= inflight) {
      Atomics.store(stop, 2, 1);
      Atomics.wait(stop, 1, waiting, 50);
      Atomics.store(stop, 2, 0);
      continue;
    }
    const n = read();
    if (n < 0) {
      self.postMessage({ error: -n });
      break;
    }
    if (n > 0) {
      const batch = packBatch(buf, stride, lens, n, skip, sharedNow());
      Atomics.add(stop, 1, 1);
      self.postMessage(batch, [batch]);
    }
  }
  self.postMessage({ stopped: true });
};
