// One TUN worker doing both jobs (TRELLIS_TUN_WORKERS=1): what ./reader-worker.ts and
// ./writer-worker.ts do in two threads, in one, for a node where memory counts more than a second
// core (each Worker is a JavaScript VM of its own, ~6.5 MB). It sleeps in poll() on the TUN fd and an
// eventfd the node writes when it has put packets in the ring while the worker slept (./wakefd.ts),
// then writes what the ring holds and reads what the device has, a batch of each per turn.
import { ptr, type Pointer } from "bun:ffi";
import { tunLib, tunLibKind, VNET_HDR_LEN } from "./ffi.ts";
import { BatchSlots } from "./batch.ts";
import { RingReader, sharedNow } from "./ring.ts";
import { Codel } from "./codel.ts";
import { wakeLib, W, type DuplexStart } from "./wakefd.ts";

declare var self: Worker;

const BATCH = 64;
const NAP_US = Number(process.env.TRELLIS_WRITER_NAP_US ?? 50);
const NAP_MIN = 16;

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
  const data = new Uint8Array(e.data.ring, RingReader.dataOffset);
  const base = ptr(data);
  const refused = (n: number) => n > 0 && Atomics.add(control, 1, n);
  const offs = new Int32Array(BATCH), lens = new Int32Array(BATCH);
  const scratch = new Uint8Array(65536 + VNET_HDR_LEN);
  const codel = new Codel();
  let n = 0, now = 0, datagrams = 0;
  const collect = (off: number, len: number, pushedAt: number) => {
    if (now === 0) now = sharedNow();
    if (codel.shouldDrop(now - pushedAt, now)) {
      Atomics.add(control, 2, 1);
      return;
    }
    offs[n] = off;
    lens[n++] = len;
    if (data[off + ((data[off] >> 4) === 4 ? 9 : 6)] !== 6) datagrams++;
  };
  const write = vnet && lib.tun_write_gro
    ? () => refused(lib.tun_write_gro!(fd, base, ptr(offs), ptr(lens), n, ptr(scratch)))
    : vnet
      ? () => {
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
      n = 0;
      now = 0;
      datagrams = 0;
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
