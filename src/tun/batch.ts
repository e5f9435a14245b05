// The reader's batches: a few slots in one SharedArrayBuffer, each with room for `max` packets `stride`
// bytes apart, their lengths as read, and the time the batch was read. The reader worker reads straight
// into a free slot and posts its number; the main thread takes views of the packets in place, and the slot
// is the reader's again once the batch is handled (no copy, no buffer per batch for the GC to collect).
// Which slots are free follows from the count of batches in flight (./reader-worker.ts): the reader fills
// slots in turn and never has more batches in flight than there are slots.
//
// Layout: f64 readAt[slots] | i32 count[slots] | i32 len[slots × max] | (8-aligned) packet bytes, slot
// after slot, packet i of slot s at (s × max + i) × stride.

export interface BatchSlotsInit {
  sab: SharedArrayBuffer;
  slots: number;
  max: number;
  stride: number;
}

export class BatchSlots {
  readonly slots: number;
  readonly max: number;
  readonly stride: number;
  private readonly readAt: Float64Array;
  private readonly counts: Int32Array;
  /** Lengths as read (with any header the reader leaves out), slot after slot. */
  readonly lens: Int32Array;
  /** Every slot's packet bytes. */
  readonly data: Uint8Array;
  private readonly dataOffset: number;

  constructor(readonly init: BatchSlotsInit) {
    const { sab, slots, max, stride } = init;
    this.slots = slots;
    this.max = max;
    this.stride = stride;
    this.readAt = new Float64Array(sab, 0, slots);
    this.counts = new Int32Array(sab, 8 * slots, slots);
    this.lens = new Int32Array(sab, 12 * slots, slots * max);
    this.dataOffset = dataOffset(slots, max);
    this.data = new Uint8Array(sab, this.dataOffset, slots * max * stride);
  }

  static make(slots: number, max: number, stride: number): BatchSlots {
    const sab = new SharedArrayBuffer(dataOffset(slots, max) + slots * max * stride);
    return new BatchSlots({ sab, slots, max, stride });
  }

  /** Where slot `s`'s packets go (a view of its bytes) and its lengths (a view of its part of lens). */
  slot(s: number): { bytes: Uint8Array; lens: Int32Array } {
    const size = this.max * this.stride;
    return { bytes: this.data.subarray(s * size, (s + 1) * size), lens: this.lens.subarray(s * this.max, (s + 1) * this.max) };
  }

  /** The reader filled slot `s` with `n` packets at `readAt` (ms, shared clock). */
  filled(s: number, n: number, readAt: number): void {
    this.counts[s] = n;
    this.readAt[s] = readAt;
  }

  /** When slot `s`'s batch was read (ms on the shared clock, ./ring.ts sharedNow). */
  readTime(s: number): number {
    return this.readAt[s];
  }

  /**
   * Views of slot `s`'s packets, each without its first `skip` bytes (a virtio-net header). They are
   * valid until the batch is handed back: whoever keeps a packet longer copies it.
   */
  packets(s: number, skip = 0): Uint8Array[] {
    const n = this.counts[s], max = this.max, stride = this.stride, sab = this.init.sab;
    const out: Uint8Array[] = new Array(n);
    let at = this.dataOffset + s * max * stride + skip;
    for (let i = 0; i < n; i++, at += stride) out[i] = new Uint8Array(sab, at, Math.max(0, this.lens[s * max + i] - skip));
    return out;
  }
}

function dataOffset(slots: number, max: number): number {
  return (12 * slots + 4 * slots * max + 7) & ~7;
}
