// The TUN reader: a Worker that blocks in poll() and drains packets in batches, so the node's event
// loop never waits on the device. Each batch goes to the main thread as one transferred buffer.
import { ptr } from "bun:ffi";
import { tunLib } from "./ffi.ts";
import { packBatch } from "./batch.ts";

declare var self: Worker;

export interface ReaderStart {
  fd: number;
  stride: number;
  max: number;
  /** Int32Array over a SharedArrayBuffer: [0] = 1 asks the reader to stop. */
  stop: SharedArrayBuffer;
  /** Bytes before each packet to leave out (the virtio-net header, when the device has one). */
  skip: number;
}

self.onmessage = (e: MessageEvent<ReaderStart>) => {
  const { fd, stride, max, skip } = e.data;
  const stop = new Int32Array(e.data.stop);
  const lib = tunLib();
  const buf = new Uint8Array(stride * max);
  const lens = new Int32Array(max);
  const bufPtr = ptr(buf), lensPtr = ptr(lens);
  while (Atomics.load(stop, 0) === 0) {
    const n = lib.tun_read_batch(fd, bufPtr, stride, lensPtr, max, 200);
    if (n < 0) {
      self.postMessage({ error: -n });
      break;
    }
    if (n > 0) {
      const batch = packBatch(buf, stride, lens, n, skip);
      self.postMessage(batch, [batch]);
    }
  }
  self.postMessage({ stopped: true });
};
