// The layout of one batch passed from the reader worker to the main thread (one transferable buffer):
//   f64 read at (ms, shared clock) | u32 count | u32 len[count] | packet bytes, back to back
const HEAD = 12;

/** `skip`: bytes at the start of each slot to leave out (a virtio-net header); `readAt`: when the batch was read. */
export function packBatch(buf: Uint8Array, stride: number, lens: Int32Array, n: number, skip = 0, readAt = 0): ArrayBuffer {
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.max(0, lens[i] - skip);
  const out = new ArrayBuffer(HEAD + 4 * n + total);
  new Float64Array(out, 0, 1)[0] = readAt;
  const head = new Uint32Array(out, 8, 1 + n);
  head[0] = n;
  const bytes = new Uint8Array(out);
  let off = HEAD + 4 * n;
  for (let i = 0; i < n; i++) {
    const len = Math.max(0, lens[i] - skip);
    head[1 + i] = len;
    bytes.set(buf.subarray(i * stride + skip, i * stride + skip + len), off);
    off += len;
  }
  return out;
}

/** When the reader read the batch (ms on the shared clock, ./ring.ts sharedNow). */
export function batchReadAt(ab: ArrayBuffer): number {
  return new Float64Array(ab, 0, 1)[0];
}

export function unpackBatch(ab: ArrayBuffer): Uint8Array[] {
  const n = new Uint32Array(ab, 8, 1)[0];
  const lens = new Uint32Array(ab, 12, n);
  const out: Uint8Array[] = new Array(n);
  let off = HEAD + 4 * n;
  for (let i = 0; i < n; i++) {
    out[i] = new Uint8Array(ab, off, lens[i]);
    off += lens[i];
  }
  return out;
}
