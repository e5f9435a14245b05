// One TUN worker doing both jobs (TRELLIS_TUN_WORKERS=1): what ./reader-worker.ts and
// ./writer-worker.ts do in two threads, in one, for a node where memory counts more than a second
// core (each Worker is a JavaScript VM of its own, ~6.5 MB). It sleeps in poll() on the TUN fd and an
// eventfd the node writes when it has put packets in the ring while the worker slept (./wakefd.ts),
// then writes what the ring holds and reads what the device has, a batch of each per turn.
import { ptr } from "bun:ffi";
import { tunLib, tunLibKind } from "./ffi.ts";
import { BatchSlots } from "./batch.ts";
import { RingReader, sharedNow } from "./ring.ts";
import { BATCH, batchWriter } from "./writebatch.ts";
import { wakeLib, W, type DuplexStart } from "./wakefd.ts";

declare var self: Worker;

self.onmessage = (e: MessageEvent<DuplexStart | { prepare: true }>) => {
  if ("prepare" in e.data) {
    tunLib();
    wakeLib();
    self.postMessage({ ready: tunLibKind, tso: tunLib().tun_read_tso !== undefined });
    return;
  }
  const { fd, efd, vnet, tso } = e.data;
  const lib = tunLib(), wl = wakeLib();
  const words = new Int32Array(e.data.words);
  const control = new Int32Array(e.data.control);

  // Writing: as ./writer-worker.ts.
  const ring = new RingReader(e.data.ring);
  const ringCtl = new Int32Array(e.data.ring, 0, 2); // ./ring.ts: [head, tail]; equal when empty
  const ringEmpty = () => Atomics.load(ringCtl, 0) === Atomics.load(ringCtl, 1);
  const w = batchWriter(fd, vnet, new Uint8Array(e.data.ring, RingReader.dataOffset), control);
  const collect = w.collect, done = w.done;

  // Reading: as ./reader-worker.ts, into the slots in turn, without its own wait (poll() below is the only
  // sleep); tried every turn, so a busy ring never starves the other direction.
  const slots = new BatchSlots(e.data.slots);
  const { stride, max } = slots, inflight = slots.slots;
  // Shared memory does not move: each slot's pointers are taken once.
  const bufPtrs = [...Array(inflight).keys()].map((s) => ptr(slots.slot(s).bytes));
  const lensPtrs = [...Array(inflight).keys()].map((s) => ptr(slots.slot(s).lens));
  const segs = new Int32Array(new SharedArrayBuffer(8));
  const segsPtr = ptr(segs);
  const read = tso && lib.tun_read_tso
    ? (s: number) => lib.tun_read_tso!(fd, bufPtrs[s], stride, lensPtrs[s], max, 0, segsPtr)
    : (s: number) => lib.tun_read_batch(fd, bufPtrs[s], stride, lensPtrs[s], max, 0);
  let slot = 0;
  let broken = false;

  while (Atomics.load(words, W.STOP) === 0) {
    let busy = false;
    if (!ringEmpty()) {
      w.start();
      ring.drain(collect, BATCH, 0, done);
      busy = true;
    }
    const reading = !broken && Atomics.load(words, W.READING) === 1;
    if (reading && Atomics.load(words, W.INFLIGHT) < inflight) {
      const got = read(slot);
      if (got < 0) {
        // As the reader worker: reading ends, writing goes on.
        self.postMessage({ error: -got });
        broken = true;
      }
      if (got > 0) {
        slots.filled(slot, got, sharedNow());
        Atomics.add(words, W.INFLIGHT, 1);
        self.postMessage(slot);
        slot = (slot + 1) % inflight;
        busy = true;
      }
    }
    if (busy) continue;
    // Nothing to do: sleep until the device or the node has something (the flags first, then one more
    // look, so a push or a handled batch that came meanwhile is never missed).
    Atomics.store(words, W.SLEEPING, 1);
    const watchTun = reading && Atomics.load(words, W.INFLIGHT) < inflight;
    Atomics.store(words, W.FULL, reading && !watchTun ? 1 : 0);
    if (!ringEmpty() || (reading && !watchTun && Atomics.load(words, W.INFLIGHT) < inflight)) {
      Atomics.store(words, W.SLEEPING, 0);
      continue;
    }
    const r = wl.wait(fd, watchTun, efd, 200);
    Atomics.store(words, W.SLEEPING, 0);
    Atomics.store(words, W.FULL, 0);
    if (r & 2) wl.drain(efd);
  }
  self.postMessage({ stopped: true });
};
