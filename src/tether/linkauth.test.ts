import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { gcmLib } from "../session/gcm.ts";
import { framed } from "../route/frame.ts";
import { AUTH_BYTES, LinkAuth } from "./linkauth.ts";

const k1 = randomBytes(32), k2 = randomBytes(32);
/** A pair of ends (a → b), each with libcrypto or node:crypto. */
function pair(aKind: "libcrypto" | "node", bKind: "libcrypto" | "node"): [LinkAuth, LinkAuth] {
  const make = (kind: string, send: Uint8Array, recv: Uint8Array) => {
    const before = process.env.TRELLIS_LINKAUTH;
    process.env.TRELLIS_LINKAUTH = kind === "node" ? "node" : "";
    try {
      return new LinkAuth(send, recv);
    } finally {
      if (before === undefined) delete process.env.TRELLIS_LINKAUTH;
      else process.env.TRELLIS_LINKAUTH = before;
    }
  };
  return [make(aKind, k1, k2), make(bKind, k2, k1)];
}
const frame = (n: number, fill: number) => {
  const b = new Uint8Array(n).fill(fill);
  b[0] = 0xc5;
  return b;
};
/** What a GSO run of `views` looks like to the receiver after UDP GRO: one buffer. */
const coalesce = (views: Uint8Array[]) => Buffer.concat(views);

const kinds = gcmLib() ? (["libcrypto", "node"] as const) : (["node"] as const);

describe("link authentication (fast channel frames)", () => {
  test("libcrypto is there on this machine (else only node:crypto is tested)", () => {
    expect(pair("libcrypto", "libcrypto")[0].kind).toBe(gcmLib() ? "libcrypto" : "node");
  });

  for (const a of kinds)
    for (const b of kinds)
      test(`${a} tags, ${b} checks: one by one, in batches, framed`, () => {
        const [tx, rx] = pair(a, b);
        const f = frame(100, 7);
        const one = tx.tag(f);
        expect(one.length).toBe(100 + AUTH_BYTES);
        expect(Buffer.from(rx.open(Buffer.from(one))!)).toEqual(Buffer.from(f));
        // A batch with a shared head: head ‖ frame[skip..].
        const head = frame(51, 9);
        const frames = [frame(300, 1), frame(300, 2), frame(300, 3)];
        const views = tx.tagAll(frames, { head, skip: 35 });
        const got: Uint8Array[] = [];
        expect(rx.openRun(coalesce(views), views[0].length, (x) => got.push(Buffer.from(x)))).toBe(0);
        expect(got.map((x) => Buffer.from(x))).toEqual(frames.map((x) => Buffer.from(framed(x, { head, skip: 35 }))));
      });

  for (const kind of kinds)
    test(`${kind}: a forged tag, a replay within one read and a replay of an earlier read are refused`, () => {
      const [tx, rx] = pair(kind, kind);
      const views = tx.tagAll([frame(64, 1), frame(64, 2), frame(64, 3), frame(64, 4)]).map((v) => Buffer.from(v));
      views[1][10] ^= 1; // forged: tag no longer matches
      views[3] = views[2]; // the same counter twice in one read
      const got: number[] = [];
      expect(rx.openRun(coalesce(views), 64 + AUTH_BYTES, (x) => got.push(x[1]))).toBe(2);
      expect(got).toEqual([1, 3]);
      // The whole read again: every one is a replay now (or forged).
      expect(rx.openRun(coalesce(views), 64 + AUTH_BYTES, () => got.push(-1))).toBe(4);
      expect(rx.open(views[0])).toBeUndefined();
    });

  test("every frame gets its own counter, across batches and single frames", () => {
    const [tx] = pair(kinds[0], kinds[0]);
    const counters: number[] = [];
    const note = (v: Uint8Array) => counters.push(Buffer.from(v).readUInt32BE(v.length - AUTH_BYTES + 4));
    note(tx.tag(frame(40, 0)));
    for (const v of tx.tagAll(Array.from({ length: 300 }, (_, i) => frame(40 + (i % 3), i)))) note(v);
    note(tx.tag(frame(40, 0)));
    expect(counters).toEqual(Array.from({ length: 302 }, (_, i) => i));
  });
});
