// The handshake functions alone: keys agree, identities are hidden and checked, tampering fails.
import { expect, test } from "bun:test";
import { encodePublicIdentity, generateIdentity } from "../identity/identity.ts";
import { HandshakeError } from "./errors.ts";
import { consumeInitiation, consumeResponse, createInitiation, mac1Key } from "./machine.ts";

const A = generateIdentity(new Uint8Array(128).fill(21));
const B = generateIdentity(new Uint8Array(128).fill(22));
const C = generateIdentity(new Uint8Array(128).fill(23));

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof HandshakeError) return e.code;
    throw e;
  }
  return "ok";
}

test("both sides derive matching transport keys and learn each other's claims", () => {
  const { message, state } = createInitiation(A, B.public, new TextEncoder().encode("claims-a"), 1, 10n);
  const r = consumeInitiation(B, mac1Key(B.public), message, () => true);
  expect(r.remote.id).toBe(A.public.id);
  expect(new TextDecoder().decode(r.claims)).toBe("claims-a");
  r.verify();
  const resp = r.respond(2, new TextEncoder().encode("claims-b"));
  const done = consumeResponse(state, mac1Key(A.public), resp.message);
  expect(done.keys.send).toEqual(resp.keys.recv);
  expect(done.keys.recv).toEqual(resp.keys.send);
  expect(done.keys.send).not.toEqual(done.keys.recv);
  expect(new TextDecoder().decode(done.claims)).toBe("claims-b");
});

test("the initiator's identity does not appear in the clear", () => {
  const { message } = createInitiation(A, B.public, new Uint8Array(0), 1, 10n);
  const pub = Buffer.from(encodePublicIdentity(A.public)).subarray(0, 64);
  expect(Buffer.from(message).indexOf(pub)).toBe(-1);
  expect(Buffer.from(message).indexOf(Buffer.from(A.public.id, "hex"))).toBe(-1);
});

test("an initiation for another responder fails mac1 before any key work", () => {
  const { message } = createInitiation(A, C.public, new Uint8Array(0), 1, 10n);
  expect(code(() => consumeInitiation(B, mac1Key(B.public), message, () => true))).toBe("bad-mac1");
});

test("every flipped region of an initiation is rejected", () => {
  const { message } = createInitiation(A, B.public, new Uint8Array(0), 1, 10n);
  for (const at of [0, 10, 100, 1500, 2500, 6000, 8000, message.length - 1]) {
    const t = Uint8Array.from(message);
    t[at] ^= 0x40;
    expect(code(() => consumeInitiation(B, mac1Key(B.public), t, () => true).verify())).not.toBe("ok");
  }
  expect(code(() => consumeInitiation(B, mac1Key(B.public), message.subarray(0, 8000), () => true))).toBe("malformed");
});

test("a valid mac1 over a forged signature is caught by verify()", () => {
  // Re-encrypting with the right keys needs the initiator's secrets; instead swap in another
  // initiator's encrypted signature region: decrypt or signature check must fail.
  const one = createInitiation(A, B.public, new Uint8Array(0), 1, 10n).message;
  const two = createInitiation(C, B.public, new Uint8Array(0), 1, 10n).message;
  const mixed = Uint8Array.from(one);
  mixed.set(two.subarray(two.length - 16 - 3325, two.length - 16), one.length - 16 - 3325);
  const r = (() => {
    try {
      return consumeInitiation(B, mac1Key(B.public), mixed, () => true);
    } catch (e) {
      return e as HandshakeError;
    }
  })();
  // mac1 covers the swapped bytes, so it fails there already: the cheap check guards the expensive one.
  expect(r instanceof HandshakeError ? r.code : "accepted").toBe("bad-mac1");
});

test("accept() runs before the signature and can refuse", () => {
  const { message } = createInitiation(A, B.public, new Uint8Array(0), 1, 10n);
  expect(code(() => consumeInitiation(B, mac1Key(B.public), message, () => "not allowed"))).toBe("refused");
});

test("a tampered or truncated response is rejected", () => {
  const { message, state } = createInitiation(A, B.public, new Uint8Array(0), 1, 10n);
  const r = consumeInitiation(B, mac1Key(B.public), message, () => true);
  const resp = r.respond(2, new Uint8Array(0)).message;
  for (const at of [4, 20, 600, 2000, resp.length - 1]) {
    const t = Uint8Array.from(resp);
    t[at] ^= 1;
    expect(code(() => consumeResponse(state, mac1Key(A.public), t))).not.toBe("ok");
  }
  expect(code(() => consumeResponse(state, mac1Key(A.public), resp.subarray(0, 100)))).toBe("malformed");
});
