// AES-256-GCM for data packets through the system's libcrypto: ffi/gcm.c, built at run time by bun:ffi's
// cc (TinyCC) as ffi/tun.c is, opens libcrypto with dlopen and seals a whole batch per call, each
// packet into its place in one buffer, and opens a packet in place. Where that cannot be had (no
// libcrypto.so.3 or .1.1, TinyCC unable to build or link, TRELLIS_GCM=node) `gcmLib()` is null and
// ./keypair.ts seals with node:crypto: the same packets either way.
//
// Why: node:crypto (Bun 1.4.5) takes a nonce only when a cipher is made, so every packet costs a
// createCipheriv and a fresh buffer from update(), final() and getAuthTag(); here a key schedule is made
// once per keypair and a packet costs its AES work and a nonce.
import { cc, ptr, type Pointer } from "bun:ffi";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import source from "../../ffi/gcm.c" with { type: "text" };

const SYMBOLS = {
  gcm_load: { args: ["ptr"], returns: "int" },
  gcm_new: { args: ["ptr", "int"], returns: "ptr" },
  gcm_free: { args: ["ptr"], returns: "void" },
  gcm_seal_batch: { args: ["ptr", "ptr", "ptr", "ptr", "ptr", "int", "f64", "f64"], returns: "int" },
  gcm_open: { args: ["ptr", "ptr", "int"], returns: "int" },
  gmac_tag_batch: { args: ["ptr", "ptr", "ptr", "ptr", "ptr", "int", "ptr", "int", "f64"], returns: "int" },
  gmac_check_batch: { args: ["ptr", "ptr", "ptr", "ptr", "int", "ptr"], returns: "int" },
} as const;

interface GcmSymbols {
  gcm_load(path: Uint8Array): number;
  gcm_new(key: Uint8Array, seal: number): Pointer | null;
  gcm_free(ctx: Pointer): void;
  gcm_seal_batch(ctx: Pointer, out: Pointer, offs: Pointer, srcs: Pointer, lens: Pointer, n: number, receiver: number, first: number): number;
  gcm_open(ctx: Pointer, p: Pointer, len: number): number;
  gmac_tag_batch(ctx: Pointer, out: Pointer, offs: Pointer, srcs: Pointer, lens: Pointer, n: number, head: Pointer, hlen: number, first: number): number;
  gmac_check_batch(ctx: Pointer, buf: Pointer, offs: Pointer, lens: Pointer, n: number, ok: Pointer): number;
}

const SONAMES = ["libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"];
/** Payloads per gcm_seal_batch call at most (a TUN batch is cut into runs of this many). */
export const GCM_BATCH = 256;

/** A libcrypto AES-256-GCM context for one key and direction; freed when its keypair is collected. */
export class GcmKey {
  private static readonly freed = new FinalizationRegistry<Pointer>((ctx) => lib?.gcm_free(ctx));

  private constructor(readonly ctx: Pointer) {}

  static make(key: Uint8Array, seal: boolean): GcmKey | undefined {
    if (!lib || key.length !== 32) return;
    const ctx = lib.gcm_new(key, seal ? 1 : 0);
    if (!ctx) return;
    const k = new GcmKey(ctx);
    GcmKey.freed.register(k, ctx);
    return k;
  }
}

// Scratch for one batch (the main thread seals one batch at a time).
const offs = new Int32Array(GCM_BATCH), lens = new Int32Array(GCM_BATCH), srcs = new Float64Array(GCM_BATCH);
const offsPtr = () => ptr(offs), lensPtr = () => ptr(lens), srcsPtr = () => ptr(srcs);

/**
 * Seal payloads[from..to) (at most GCM_BATCH) into `out` (a buffer of their sizes + 32 each, in order
 * from `at`), counters first, first + 1, …; false when libcrypto failed (the caller must not send any).
 */
export function sealRun(key: GcmKey, out: Uint8Array, at: number, payloads: readonly Uint8Array[], from: number, to: number, receiver: number, first: number): boolean {
  const n = to - from;
  let off = at;
  for (let i = 0; i < n; i++) {
    const p = payloads[from + i];
    offs[i] = off;
    lens[i] = p.length;
    // An empty payload (a keepalive) has no bytes to point at: any valid pointer will do, none is read.
    srcs[i] = p.length > 0 ? ptr(p) : 0;
    off += p.length + 32;
  }
  return lib!.gcm_seal_batch(key.ctx, ptr(out), offsPtr(), srcsPtr(), lensPtr(), n, receiver >>> 0, first) === n;
}

/** Open the data packet `p` in place; true when its tag verified (its plaintext is then p[16 .. len-16]). */
export function openInPlace(key: GcmKey, p: Uint8Array): boolean {
  return lib!.gcm_open(key.ctx, ptr(p), p.length) === 1;
}

/** Bytes gmacTagRun adds to each frame: its counter u64 and the tag. */
export const GMAC_BYTES = 8 + 16;
const noHead = new Uint8Array(1);

/**
 * Link-authenticate frames[from..to) (at most GCM_BATCH) into `out` from `at` on, in order: each becomes
 * head ‖ frames[i][skip..] ‖ counter (u64 BE, first, first + 1, …) ‖ GMAC tag (ffi/gcm.c
 * gmac_tag_batch); `head` and `skip` let a relay re-frame without a copy of its own. False when
 * libcrypto failed (the caller must send none of them).
 */
export function gmacTagRun(key: GcmKey, out: Uint8Array, at: number, frames: readonly Uint8Array[], from: number, to: number, head: Uint8Array | undefined, skip: number, first: number): boolean {
  const n = to - from, hlen = head ? head.length : 0;
  let off = at;
  for (let i = 0; i < n; i++) {
    const f = frames[from + i];
    const len = f.length - skip;
    offs[i] = off;
    lens[i] = len;
    srcs[i] = len > 0 ? ptr(f) + skip : 0;
    off += hlen + len + GMAC_BYTES;
  }
  return lib!.gmac_tag_batch(key.ctx, ptr(out), offsPtr(), srcsPtr(), lensPtr(), n, ptr(head && hlen > 0 ? head : noHead), hlen, first) === n;
}

const okBytes = new Uint8Array(GCM_BATCH);
/**
 * Check n (at most GCM_BATCH) link-authenticated frames in `buf`: frame i at `at + i * size`, `size`
 * bytes with counter and tag (the last may be shorter, ending at buf's end). ok[i] = 1 where the tag
 * verified. Returns the flags (a scratch array, valid until the next call).
 */
export function gmacCheckRun(key: GcmKey, buf: Uint8Array, at: number, size: number, n: number): Uint8Array {
  for (let i = 0; i < n; i++) {
    const o = at + i * size;
    offs[i] = o;
    lens[i] = Math.min(size, buf.length - o);
  }
  lib!.gmac_check_batch(key.ctx, ptr(buf), offsPtr(), lensPtr(), n, ptr(okBytes));
  return okBytes;
}

let lib: GcmSymbols | null | undefined;
/** Which implementation seals data packets in this thread: "libcrypto" (ffi/gcm.c) or "node" (node:crypto). */
export let gcmKind: "libcrypto" | "node" | undefined;
/** Why libcrypto is not used, when it is not. */
export let gcmWhyNot: string | undefined;

/**
 * Build ffi/gcm.c and open libcrypto, once per thread (call it early: while the node still runs as
 * root, as the TUN helper is built). Returns the functions, or null where node:crypto must do.
 */
export function gcmLib(): GcmSymbols | null {
  if (lib !== undefined) return lib;
  lib = null;
  gcmKind = "node";
  if (process.env.TRELLIS_GCM === "node") return (gcmWhyNot = "TRELLIS_GCM=node"), lib;
  let l: GcmSymbols;
  const dir = mkdtempSync(join(tmpdir(), "trellis-gcm-"));
  try {
    const file = join(dir, "gcm.c");
    writeFileSync(file, source, { mode: 0o600 });
    l = cc({ source: file, symbols: SYMBOLS }).symbols as unknown as GcmSymbols;
  } catch (e) {
    gcmWhyNot = `cannot build ffi/gcm.c: ${(e as Error).message.split("\n")[0]}`;
    return lib;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (!SONAMES.some((s) => l.gcm_load(Buffer.from(s + "\0")) === 1)) {
    gcmWhyNot = "no libcrypto (libcrypto.so.3 or .1.1) with EVP AES-256-GCM";
    return lib;
  }
  lib = l;
  gcmKind = "libcrypto";
  gcmWhyNot = undefined;
  return lib;
}
