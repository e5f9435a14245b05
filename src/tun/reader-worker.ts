// The TUN reader: a Worker that blocks in poll() and drains packets in batches, so the node's event
// loop never waits on the device. Each batch goes to the main thread as one transferred buffer; at most
// a few batches are in flight, so a busy node queues in the kernel, where TCP sees it, not here.
import { ptr } from "bun:ffi";
import { tunLib } from "./ffi.ts";
import { packBatch } from "./batch.ts";

declare var self: Worker;

export interface ReaderStart {
  fd: number;
  stride: number;
  max: number;
  /**
   * Int32 words over a SharedArrayBuffer: [0] = 1 asks the reader to stop; [1] counts batches posted and
   * not yet handled by the main thread (it subtracts and notifies).
   */
  stop: SharedArrayBuffer;
  /** At most this many batches in flight: past it the reader leaves packets in the device's queue. */
  inflight: number;
  /** Bytes before each packet to leave out (the virtio-net header, when the device has one). */
  skip: number;
}

self.onmessage = (e: MessageEvent<ReaderStart>) => {
  const { fd, stride, max, skip, inflight } = e.data;
  const stop = new Int32Array(e.data.stop);
  const lib = tunLib();
  const buf = new Uint8Array(stride * max);
  const lens = new Int32Array(max);
  const bufPtr = ptr(buf), lensPtr = ptr(lens);
  while (Atomics.load(stop, 0) === 0) {
    // Backpressure: while the main thread is behind, the kernel's queue (and its drops, which TCP reads
    // as congestion) stands in for an unbounded queue of messages, and latency under load stays low.
    const waiting = Atomics.load(stop, 1);
    if (waiting >= inflight) {
      Atomics.wait(stop, 1, waiting, 50);
      continue;
    }
    const n = lib.tun_read_batch(fd, bufPtr, stride, lensPtr, max, 200);
    if (n < 0) {
      self.postMessage({ error: -n });
      break;
    }
    if (n > 0) {
      const batch = packBatch(buf, stride, lens, n, skip);
      Atomics.add(stop, 1, 1);
      self.postMessage(batch, [batch]);
    }
  }
  self.postMessage({ stopped: true });
};
