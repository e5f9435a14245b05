// A full garbage collection now and then while many links are being set up (issue 18).
//
// JSC never moves objects: what a link keeps after its set-up stays where it was allocated, among the
// set-up's short-lived garbage (ICE, DTLS, SDP, signals, handshakes), and each survivor keeps its whole
// 16 KB heap block. With many set-ups at once the heap grows far between collections and the survivors
// end up spread thin over many blocks: on a relay after 200 members joined, 7,000 blocks (110 MB) held
// 22 MB of live objects (bench/link-footprint.ts --batch shows it too: the same live heap per link at
// once or one by one, 2-3x the blocks at once). Collecting every few hundred ms during a burst of
// set-ups reuses the freed cells sooner, so later survivors fill old blocks instead of new ones. Measured
// (bench/peers-load.ts --peers "100 200", relay at 200 members): on a loaded machine (load 8-16, set-ups
// slow and overlapping) a collection every 250 ms: 3,317 blocks, RSS 157 MB against 7,029 and 202 MB
// without; this spaced version at load 17: 184 MB. On a quiet machine (load 3, 100 members up in 15 s)
// it changes nothing (162 vs 161 MB): the bursts are short and the heap stays dense. Only during bursts
// (minSetups set-ups within windowMs), never on an idle node or for a single new link, and at most ~10 %
// of the time (a slow collection spaces the next ones out). TRELLIS_BURST_GC_MS=0 turns it off.

export const burstGc = {
  /** Collect at most this often during a burst (ms); 0: never. */
  everyMs: Number(process.env.TRELLIS_BURST_GC_MS ?? 250),
  /** A burst: at least `minSetups` set-ups started within `windowMs`; collections stop `windowMs` after it. */
  minSetups: 4,
  windowMs: 5_000,
  /** A collection taking d ms waits d × spacing before the next (≤ 1/spacing of the time). */
  spacing: 10,
  collect: (): void => Bun.gc(true),
};

let timer: ReturnType<typeof setTimeout> | undefined;
/** When recent set-ups started (at most minSetups kept). */
let starts: number[] = [];

/** A link set-up starts; in a burst, collections run until windowMs after the last set-up started. */
export function setupStarted(): void {
  if (!(burstGc.everyMs > 0)) return;
  const now = performance.now();
  starts.push(now);
  if (starts.length > burstGc.minSetups) starts = starts.slice(-burstGc.minSetups);
  if (timer || starts.length < burstGc.minSetups || now - starts[0] > burstGc.windowMs) return;
  schedule(burstGc.everyMs);
}

function schedule(ms: number): void {
  timer = setTimeout(() => {
    const t0 = performance.now();
    burstGc.collect();
    const took = performance.now() - t0;
    if (performance.now() - starts[starts.length - 1] > burstGc.windowMs) timer = undefined;
    else schedule(Math.max(burstGc.everyMs, took * burstGc.spacing));
  }, ms);
  timer.unref?.();
}

/** Whether collections are running (tests). */
export function burstGcRunning(): boolean {
  return timer !== undefined;
}

/** Forget the set-ups seen and stop collecting (tests: links made by other tests in the process). */
export function resetBurstGc(): void {
  clearTimeout(timer);
  timer = undefined;
  starts = [];
}
