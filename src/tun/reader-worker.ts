// The TUN reader: a Worker that blocks in poll() and drains packets in batches, so the node's event
// loop never waits on the device. Each batch is read into a slot shared with the main thread
// (./batch.ts), stamped with the time it was read, and the slot's number posted: the main thread runs
// CoDel on that wait (./linux.ts), so a standing queue is met with drops TCP reads as congestion. Past
// a few batches in flight (as many as there are slots) the reader stops reading, and the kernel's queue
// (and its drops) takes over.
import { ptr } from "bun:ffi";
import { tunLib, tunLibKind } from "./ffi.ts";
import { BatchSlots, type BatchSlotsInit } from "./batch.ts";
import { sharedNow } from "./ring.ts";

declare var self: Worker;

export interface ReaderStart {
  fd: number;
  /** The slots to read into (stride and batch size are theirs). */
  slots: BatchSlotsInit;
  /**
   * Int32 words over a SharedArrayBuffer: [0] = 1 asks the reader to stop; [1] counts batches posted and
   * not yet handled by the main thread (it subtracts, and notifies when [2] says the reader waits).
   */
  stop: SharedArrayBuffer;
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
  const { fd, tso } = e.data;
  const stop = new Int32Array(e.data.stop);
  const lib = tunLib();
  const slots = new BatchSlots(e.data.slots);
  const { stride, max } = slots, inflight = slots.slots;
  // Shared memory does not move: each slot's pointers are taken once.
  const bufPtrs = [...Array(inflight).keys()].map((s) => ptr(slots.slot(s).bytes));
  const lensPtrs = [...Array(inflight).keys()].map((s) => ptr(slots.slot(s).lens));
  const segs = new Int32Array(new SharedArrayBuffer(8));
  const segsPtr = ptr(segs);
  const read = tso && lib.tun_read_tso
    ? (s: number) => lib.tun_read_tso!(fd, bufPtrs[s], stride, lensPtrs[s], max, 200, segsPtr)
    : (s: number) => lib.tun_read_batch(fd, bufPtrs[s], stride, lensPtrs[s], max, 200);
  // Slots are filled in turn; with fewer batches in flight than slots, the next one was handled.
  let slot = 0;
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
    const n = read(slot);
    if (n < 0) {
      self.postMessage({ error: -n });
      break;
    }
    if (n > 0) {
      slots.filled(slot, n, sharedNow());
      Atomics.add(stop, 1, 1);
      self.postMessage(slot);
      slot = (slot + 1) % inflight;
    }
  }
  self.postMessage({ stopped: true });
};
