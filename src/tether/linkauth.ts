// The fast channel's per-link authentication of frames that are not session data (forward frames,
// 0xC5): the frame, then a counter u64 (BE) and a 16-byte AES-256-GCM tag over both (GMAC: the frame is
// associated data, nothing is encrypted) under a key per direction, nonce 0^4 ‖ counter (BE); the
// receiver checks the tag and a replay window before it hands the frame on (./fast.ts says why).
//
// Batches: the frames of one send go through one call into ffi/gcm.c (gmac_tag_batch: each frame
// copied into one buffer and tagged there), and the datagrams of one GRO read are checked in one call
// (gmac_check_batch); a relay re-frames forwarded frames in that copy (a shared head, the rest of each
// frame after `skip` bytes), so a frame costs no allocation of its own but its view. Where libcrypto is
// not there (src/session/gcm.ts), node:crypto does the same frame by frame: the same bytes either way.
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from "node:crypto";
import { GCM_BATCH, gcmLib, GcmKey, gmacCheckRun, gmacTagRun, GMAC_BYTES } from "../session/gcm.ts";
import { ReplayWindow } from "../session/replay.ts";
import type { Framing } from "../route/frame.ts";

/** What authentication adds to a frame: counter u64 and tag. */
export const AUTH_BYTES = GMAC_BYTES;

/** The buffer transient batches are tagged into (one thread, each batch sent before the next is tagged). */
let scratch = Buffer.allocUnsafe(64 * 1024);

export class LinkAuth {
  private sendCounter = 0;
  private readonly replay = new ReplayWindow();
  private readonly sendGcm?: GcmKey;
  private readonly recvGcm?: GcmKey;
  // node:crypto's, where libcrypto is not there: key objects made once (a raw key would be imported on
  // every createCipheriv), nonces written in place per frame (createCipheriv copies its IV).
  private readonly sendKey: KeyObject;
  private readonly recvKey: KeyObject;
  private readonly sendNonce = Buffer.alloc(12);
  private readonly recvNonce = Buffer.alloc(12);

  constructor(send: Uint8Array, recv: Uint8Array) {
    this.sendKey = createSecretKey(send);
    this.recvKey = createSecretKey(recv);
    if (gcmLib() && process.env.TRELLIS_LINKAUTH !== "node") {
      this.sendGcm = GcmKey.make(send, true);
      this.recvGcm = GcmKey.make(recv, false);
    }
  }

  /** Which implementation tags and checks: "libcrypto" (batches through ffi/gcm.c) or "node". */
  get kind(): "libcrypto" | "node" {
    return this.sendGcm && this.recvGcm ? "libcrypto" : "node";
  }

  /** `b` ‖ counter ‖ tag. */
  tag(b: Uint8Array): Uint8Array {
    return this.tagAll([b])[0];
  }

  /**
   * Each frame of `frames` authenticated ((framing.head ‖) frame[framing.skip..] ‖ counter ‖ tag), in
   * order, as views into one buffer (one allocation for the batch). `transient`: the caller is done
   * with the views before it returns (sent synchronously), so they may share a buffer kept for reuse.
   */
  tagAll(frames: readonly Uint8Array[], framing?: Framing, transient = false): Uint8Array[] {
    const views: Uint8Array[] = new Array(frames.length);
    this.tagInto(frames, framing, transient, views);
    return views;
  }

  /**
   * tagAll without a view per frame: the frames authenticated back to back in one buffer (the transient
   * one) from 0, `length` bytes in all: where they are equal in size (the last may be shorter) one GSO
   * send takes them as they lie. The buffer is valid until the next transient batch.
   */
  tagRun(frames: readonly Uint8Array[], framing?: Framing): { buf: Buffer; length: number } {
    const length = this.tagInto(frames, framing, true);
    return { buf: scratch, length };
  }

  /** Tag `frames` into one buffer (the transient one, or a new one); each frame's view into `views`, if given. Returns the bytes written. */
  private tagInto(frames: readonly Uint8Array[], framing: Framing | undefined, transient: boolean, views?: Uint8Array[]): number {
    const hlen = framing ? framing.head.length : 0, skip = framing ? framing.skip : 0;
    let total = 0;
    for (const f of frames) total += hlen + f.length - skip + AUTH_BYTES;
    if (transient && total > scratch.length) scratch = Buffer.allocUnsafe(Math.max(total, 2 * scratch.length));
    const out = transient ? scratch : Buffer.allocUnsafe(total);
    const gcm = this.sendGcm;
    let at = 0;
    for (let from = 0; from < frames.length; from += GCM_BATCH) {
      const to = Math.min(frames.length, from + GCM_BATCH);
      const first = this.sendCounter;
      this.sendCounter += to - from;
      // Should libcrypto fail, node:crypto tags the run again (same counters: none of it was sent).
      const c = gcm && gmacTagRun(gcm, out, at, frames, from, to, framing?.head, skip, first);
      for (let i = from; i < to; i++) {
        const len = hlen + frames[i].length - skip + AUTH_BYTES;
        if (!c || views) {
          const v = out.subarray(at, at + len);
          if (!c) this.tagNode(v, frames[i], framing, first + i - from);
          if (views) views[i] = v;
        }
        at += len;
      }
    }
    return total;
  }

  /** node:crypto: frame `f` (framed) into `out`, with `counter` and the tag. */
  private tagNode(out: Buffer, f: Uint8Array, framing: Framing | undefined, counter: number): void {
    let at = 0;
    if (framing) {
      out.set(framing.head);
      at = framing.head.length;
    }
    out.set(framing ? f.subarray(framing.skip) : f, at);
    const end = out.length - AUTH_BYTES;
    const hi = Math.floor(counter / 4294967296), lo = counter >>> 0;
    out.writeUInt32BE(hi, end);
    out.writeUInt32BE(lo, end + 4);
    this.sendNonce.writeUInt32BE(hi, 4);
    this.sendNonce.writeUInt32BE(lo, 8);
    const c = createCipheriv("aes-256-gcm", this.sendKey, this.sendNonce);
    c.setAAD(out.subarray(0, end + 8));
    c.final();
    c.getAuthTag().copy(out, end + 8);
  }

  /** The frame inside one authenticated datagram, or undefined when its tag or counter is wrong. */
  open(b: Buffer): Uint8Array | undefined {
    if (b.length < 1 + AUTH_BYTES) return;
    const end = b.length - AUTH_BYTES;
    const counter = this.counterAt(b, end);
    if (counter === undefined || !this.replay.check(counter)) return;
    if (this.recvGcm) {
      if (gmacCheckRun(this.recvGcm, b, 0, b.length, 1)[0] !== 1) return;
    } else if (!this.checkNode(b, end, counter)) return;
    this.replay.update(counter);
    return b.subarray(0, end);
  }

  /**
   * The datagrams of one GRO read (`size` bytes each, the last may be shorter): each that verifies and
   * is not a replay goes to `take` (the frame without counter and tag), in order; returns how many did
   * not.
   */
  openRun(data: Buffer, size: number, take: (frame: Uint8Array) => void): number {
    let rejected = 0;
    const count = Math.ceil(data.length / size);
    for (let from = 0; from < count; from += GCM_BATCH) {
      const n = Math.min(count - from, GCM_BATCH);
      const at = from * size;
      const ok = this.recvGcm ? gmacCheckRun(this.recvGcm, data, at, size, n) : undefined;
      for (let i = 0; i < n; i++) {
        const o = at + i * size, len = Math.min(size, data.length - o);
        const end = o + len - AUTH_BYTES;
        const counter = len < 1 + AUTH_BYTES ? undefined : this.counterAt(data, end);
        // A counter seen before (also earlier in this read) is a replay, whatever its tag.
        if (counter === undefined || !this.replay.check(counter) || !(ok ? ok[i] === 1 : this.checkNode(data.subarray(o, o + len), len - AUTH_BYTES, counter))) {
          rejected++;
          continue;
        }
        this.replay.update(counter);
        take(data.subarray(o, end));
      }
    }
    return rejected;
  }

  private counterAt(b: Buffer, end: number): number | undefined {
    const hi = b.readUInt32BE(end), lo = b.readUInt32BE(end + 4);
    if (hi >= 0x200000) return; // beyond 2^53: never sent
    return hi * 4294967296 + lo;
  }

  /** node:crypto: whether the tag of datagram `b` (frame ends at `end`) verifies. */
  private checkNode(b: Buffer, end: number, counter: number): boolean {
    this.recvNonce.writeUInt32BE(Math.floor(counter / 4294967296), 4);
    this.recvNonce.writeUInt32BE(counter >>> 0, 8);
    const d = createDecipheriv("aes-256-gcm", this.recvKey, this.recvNonce);
    d.setAAD(b.subarray(0, end + 8));
    d.setAuthTag(b.subarray(end + 8, end + AUTH_BYTES));
    try {
      d.final();
      return true;
    } catch {
      return false;
    }
  }
}
