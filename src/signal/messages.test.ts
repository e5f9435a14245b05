// Signed signalling: round trip, and every way a seed or an attacker could bend a message is refused.
import { describe, expect, test } from "bun:test";
import { generateIdentity } from "../identity/identity.ts";
import { CLOCK_SKEW_MS, makeSignal, makeSignalAsync, SignalError, SignalVerifier } from "./messages.ts";

const A = generateIdentity(new Uint8Array(128).fill(31));
const B = generateIdentity(new Uint8Array(128).fill(32));
const C = generateIdentity(new Uint8Array(128).fill(33));

function code(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    if (e instanceof SignalError) return e.code;
    throw e;
  }
}

describe("signal messages", () => {
  test("a signed offer verifies and carries the sender's identity", () => {
    const env = makeSignal(A, "offer", B.public.id, "v=0 sdp");
    const s = new SignalVerifier(B.public.id).verify(JSON.parse(JSON.stringify(env)));
    expect(s).toMatchObject({ kind: "offer", from: A.public.id, to: B.public.id, sdp: "v=0 sdp" });
    expect(s.remote.id).toBe(A.public.id);
  });

  test("a tampered SDP, kind or timestamp fails the signature", () => {
    const env = makeSignal(A, "offer", B.public.id, "v=0 sdp");
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, sdp: "v=0 evil" }))).toBe("bad-signature");
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, kind: "bye" }))).toBe("bad-signature");
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, ts: env.ts + 1 }))).toBe("bad-signature");
  });

  test("a changed nonce or certificate list fails the signature (both are signed)", () => {
    const cert = Buffer.from("a certificate").toString("base64");
    const env = makeSignal(A, "offer", B.public.id, "v=0", Date.now(), [cert]);
    expect(code(() => new SignalVerifier(B.public.id).verify(env))).toBe("ok");
    // A fresh nonce on an old message would defeat the replay check if the nonce were not signed.
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, nonce: "fresh-nonce" }))).toBe("bad-signature");
    // A seed swapping, dropping or adding a certificate must not go unnoticed.
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, certs: [] }))).toBe("bad-signature");
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, certs: undefined }))).toBe("bad-signature");
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, certs: [Buffer.from("another").toString("base64")] }))).toBe("bad-signature");
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, certs: [cert, cert] }))).toBe("bad-signature");
    // A genuine signature by A, but over another message, does not vouch for this one.
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, sig: makeSignal(A, "offer", B.public.id, "v=0").sig }))).toBe("bad-signature");
  });

  test("a replay with the same nonce is refused even by a verifier that saw it from another message", () => {
    const v = new SignalVerifier(B.public.id);
    const env = makeSignal(A, "offer", B.public.id, "one");
    expect(code(() => v.verify(env))).toBe("ok");
    expect(code(() => v.verify({ ...env }))).toBe("replay");
    // A failed verification does not burn the nonce: the genuine message still gets through once.
    const v2 = new SignalVerifier(B.public.id);
    const env2 = makeSignal(A, "offer", B.public.id, "two");
    expect(code(() => v2.verify({ ...env2, sdp: "evil" }))).toBe("bad-signature");
    expect(code(() => v2.verify(env2))).toBe("ok");
  });

  test("a message redirected to another node is refused", () => {
    const env = makeSignal(A, "offer", B.public.id, "x");
    expect(code(() => new SignalVerifier(C.public.id).verify(env))).toBe("not-for-us");
    expect(code(() => new SignalVerifier(C.public.id).verify({ ...env, to: C.public.id }))).toBe("bad-signature");
  });

  test("a sender claiming another id, or carrying another key, is refused", () => {
    const env = makeSignal(A, "knock", B.public.id);
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, from: C.public.id }))).toBe("wrong-sender");
    const forged = makeSignal(C, "knock", B.public.id);
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...env, pub: forged.pub }))).toBe("wrong-sender");
    // C signing as itself but naming A as sender, with A's key: the signature is C's, so it fails.
    expect(code(() => new SignalVerifier(B.public.id).verify({ ...forged, from: A.public.id, pub: env.pub }))).toBe("bad-signature");
  });

  test("replayed and stale messages are refused", () => {
    const v = new SignalVerifier(B.public.id);
    const env = makeSignal(A, "knock", B.public.id);
    expect(code(() => v.verify(env))).toBe("ok");
    expect(code(() => v.verify(env))).toBe("replay");
    const old = makeSignal(A, "knock", B.public.id, undefined, Date.now() - 10 * 60_000);
    expect(code(() => v.verify(old))).toBe("stale");
  });

  test("the clock skew allowed is CLOCK_SKEW_MS either way, to the millisecond", () => {
    const t = 1_800_000_000_000;
    for (const [ts, want] of [[t - CLOCK_SKEW_MS, "ok"], [t + CLOCK_SKEW_MS, "ok"], [t - CLOCK_SKEW_MS - 1, "stale"], [t + CLOCK_SKEW_MS + 1, "stale"]] as const)
      expect(code(() => new SignalVerifier(B.public.id, () => t).verify(makeSignal(A, "knock", B.public.id, undefined, ts)))).toBe(want);
  });

  test("garbage and oversized messages are malformed, never a crash", () => {
    const v = new SignalVerifier(B.public.id);
    for (const g of [null, 1, "x", [], {}, { v: 1 }, { ...makeSignal(A, "knock", B.public.id), pub: "!!" }])
      expect(["malformed", "bad-signature", "wrong-sender"]).toContain(code(() => v.verify(g)));
    expect(code(() => v.verify({ ...makeSignal(A, "offer", B.public.id, "x"), sdp: "x".repeat(40_000) }))).toBe("too-large");
  });
});

describe("signal messages, signed and checked in the runtime (../identity/fastsig.ts)", () => {
  const codeOf = (p: Promise<unknown>) => p.then(() => "ok", (e) => (e instanceof SignalError ? e.code : Promise.reject(e)));

  test("either side may be noble or the runtime; the same bends are refused; the same message twice at once is one signal and one replay", async () => {
    const env = await makeSignalAsync(A, "offer", B.public.id, "v=0 sdp");
    expect(code(() => new SignalVerifier(B.public.id).verify(JSON.parse(JSON.stringify(env))))).toBe("ok"); // noble checks it
    expect(await codeOf(new SignalVerifier(B.public.id).verifyAsync(makeSignal(A, "offer", B.public.id, "x")))).toBe("ok");
    for (const bent of [{ ...env, sdp: "v=0 evil" }, { ...env, kind: "bye" }, { ...env, ts: env.ts + 1 }, { ...env, to: C.public.id }])
      expect(await codeOf(new SignalVerifier(bent.to as never).verifyAsync(bent))).toBe("bad-signature");
    expect(await codeOf(new SignalVerifier(B.public.id).verifyAsync({ ...env, from: C.public.id }))).toBe("wrong-sender");
    const v = new SignalVerifier(B.public.id);
    expect((await Promise.all([codeOf(v.verifyAsync(env)), codeOf(v.verifyAsync({ ...env }))])).sort()).toEqual(["ok", "replay"]); // either may finish first
    // A forged copy does not burn the genuine message's nonce, even while its check is in flight.
    const v2 = new SignalVerifier(B.public.id);
    const env2 = await makeSignalAsync(A, "offer", B.public.id, "two");
    expect(await Promise.all([codeOf(v2.verifyAsync({ ...env2, sdp: "evil" })), codeOf(v2.verifyAsync(env2))])).toEqual(["bad-signature", "ok"]);
    expect(await codeOf(v2.verifyAsync(env2))).toBe("replay");
  });
});

