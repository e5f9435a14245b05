// A single-producer single-consumer ring of packets in a SharedArrayBuffer: how the node hands packets
// to the TUN writer thread without a postMessage (and its copy and wake-up) per batch.
//
// Layout: Int32 control words [head, tail, sleeping], then the data area. A record is a u32 length, the
// time it was pushed (f64 ms on the shared clock: timeOrigin + now, so the reader can tell how long a
// packet waited), and the packet, padded to 4 bytes; a length of WRAP means "continue at the start".
// head and tail are byte offsets into the data area; the ring is empty when they are equal and never
// allowed to become full (one record's room stays free), so equality always means empty.
const HEAD = 0, TAIL = 1, SLEEPING = 2;
const CONTROL_BYTES = 16;
const WRAP = 0xffffffff;

const pad4 = (n: number) => (n + 3) & ~3;
const RECORD_HEADER = 12;

/** Milliseconds on a clock every thread of the process shares. */
export const sharedNow = () => performance.timeOrigin + performance.now();

export function ringBuffer(bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(CONTROL_BYTES + pad4(bytes));
}

export class RingWriter {
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  private readonly view: DataView;

  constructor(sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, 4);
    this.data = new Uint8Array(sab, CONTROL_BYTES);
    this.view = new DataView(sab, CONTROL_BYTES);
  }

  /**
   * Append a packet pushed at `at` (ms on the shared clock; the caller may read it once for a batch of
   * pushes); false when the ring is full (the caller counts a drop).
   */
  push(p: Uint8Array, at: number = sharedNow()): boolean {
    const size = this.data.length;
    const need = RECORD_HEADER + pad4(p.length);
    let head = Atomics.load(this.ctl, HEAD);
    const tail = Atomics.load(this.ctl, TAIL);
    const free = tail > head ? tail - head : size - head + tail;
    if (head + need + 4 > size) {
      // Not enough room before the end: mark a wrap and start over at 0 (needs room there too).
      if (tail > head || tail <= need + 4 || free <= need + 4) return false;
      this.view.setUint32(head, WRAP, true);
      head = 0;
    } else if (free <= need + 4) return false;
    this.view.setUint32(head, p.length, true);
    this.view.setFloat64(head + 4, at, true);
    this.data.set(p, head + RECORD_HEADER);
    Atomics.store(this.ctl, HEAD, head + need);
    return true;
  }

  /** Whether the reader has taken (and written) every packet pushed so far. */
  empty(): boolean {
    return Atomics.load(this.ctl, HEAD) === Atomics.load(this.ctl, TAIL);
  }

  /** Wake the reader if it sleeps (once per batch of pushes). */
  wake(): void {
    if (Atomics.load(this.ctl, SLEEPING) === 1) Atomics.notify(this.ctl, HEAD);
  }
}

export class RingReader {
  private readonly ctl: Int32Array;
  private readonly view: DataView;

  constructor(sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, 4);
    this.view = new DataView(sab, CONTROL_BYTES);
  }

  /** Byte offset of the data area in the shared buffer (for pointers into it). */
  static readonly dataOffset = CONTROL_BYTES;

  /**
   * Hand each waiting packet to `each(offset in the data area, length, when pushed)`, at most `max`, call `done` (the
   * packets are still in place), then free their room. Waits up to `timeoutMs` when the ring is empty.
   * Returns how many it handed over.
   */
  drain(each: (offset: number, length: number, pushedAt: number) => void, max: number, timeoutMs: number, done?: (n: number) => void): number {
    let tail = Atomics.load(this.ctl, TAIL);
    if (Atomics.load(this.ctl, HEAD) === tail) {
      Atomics.store(this.ctl, SLEEPING, 1);
      const head = Atomics.load(this.ctl, HEAD);
      if (head === tail) Atomics.wait(this.ctl, HEAD, head, timeoutMs);
      Atomics.store(this.ctl, SLEEPING, 0);
    }
    let n = 0;
    while (n < max) {
      const head = Atomics.load(this.ctl, HEAD);
      if (head === tail) break;
      let len = this.view.getUint32(tail, true);
      if (len === WRAP) {
        tail = 0;
        len = this.view.getUint32(0, true);
      }
      each(tail + RECORD_HEADER, len, this.view.getFloat64(tail + 4, true));
      tail += RECORD_HEADER + pad4(len);
      n++;
    }
    if (n > 0) done?.(n);
    Atomics.store(this.ctl, TAIL, tail);
    return n;
  }
}
