// The handshake functions alone: keys agree, identities are hidden and checked, tampering fails.
import { expect, test } from "bun:test";
import { encodePublicIdentity, generateIdentity } from "../identity/identity.ts";
import { HandshakeError } from "./errors.ts";
import {
  consumeCookieReply, consumeInitiation, consumeResponse, cookieFor, cookieKey, createCookieReply, createInitiation, initiationMac1Valid,
  initiationMac2Valid, mac1Key,
} from "./machine.ts";
import { equalBytes, hash, hmac, open, seal } from "./kdf.ts";
import { COOKIE_REPLY_BYTES, MAX_CLAIMS } from "./messages.ts";

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
  const done = consumeResponse(state, resp.message);
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
  for (const at of [0, 10, 100, 1500, 2500, 6000, 8000, message.length - 17]) {
    const t = Uint8Array.from(message);
    t[at] ^= 0x40;
    expect(code(() => consumeInitiation(B, mac1Key(B.public), t, () => true).verify())).not.toBe("ok");
  }
  expect(code(() => consumeInitiation(B, mac1Key(B.public), message.subarray(0, 8000), () => true))).toBe("malformed");
});

test("a mac1 over swapped signature bytes fails at mac1, before any key work", () => {
  // Splicing another initiator's encrypted signature into a message leaves mac1 wrong: the cheap
  // check guards the expensive ones. (The signature check itself is reached in the tests below.)
  const one = createInitiation(A, B.public, new Uint8Array(0), 1, 10n).message;
  const two = createInitiation(C, B.public, new Uint8Array(0), 1, 10n).message;
  const mixed = Uint8Array.from(one);
  mixed.set(two.subarray(two.length - 32 - 3325, two.length - 32), one.length - 32 - 3325);
  expect(code(() => consumeInitiation(B, mac1Key(B.public), mixed, () => true))).toBe("bad-mac1");
});

test("an initiation claiming A's identity but signed with another key: valid mac1 and AEAD, verify() refuses", () => {
  // The forger knows A's public identity (anyone may) and holds its own signing key C. Everything
  // it builds is well-formed: mac1 over the message, the static part sealed under the real keys.
  const forger = { ...C, public: A.public };
  const { message } = createInitiation(forger, B.public, new Uint8Array(0), 1, 10n);
  const r = consumeInitiation(B, mac1Key(B.public), message, () => true); // mac1, decrypt, accept: all pass
  expect(r.remote.id).toBe(A.public.id);
  expect(code(() => r.verify())).toBe("bad-signature");
  // The same forger signing honestly as itself is accepted: the refusal above is the signature's.
  const honest = consumeInitiation(B, mac1Key(B.public), createInitiation(C, B.public, new Uint8Array(0), 1, 10n).message, () => true);
  expect(code(() => honest.verify())).toBe("ok");
});

test("a response from a holder of B's key-agreement secrets without B's signing key: consumeResponse refuses", () => {
  // The response's keys need B's KEM and X25519 secrets, so only their holder reaches the signature:
  // the ML-DSA signature is what still stands if those leak. The forger has them but signs with C.
  const { message, state } = createInitiation(A, B.public, new Uint8Array(0), 1, 10n);
  const forgedB = { ...B, dsaSecret: C.dsaSecret };
  const r = consumeInitiation(forgedB, mac1Key(B.public), message, () => true);
  r.verify(); // A's signature is fine
  const resp = r.respond(2, new Uint8Array(0)).message;
  expect(code(() => consumeResponse(state, resp))).toBe("bad-signature");
  // B itself, same initiation: accepted.
  const good = consumeInitiation(B, mac1Key(B.public), message, () => true).respond(3, new Uint8Array(0)).message;
  expect(code(() => consumeResponse(state, good))).toBe("ok");
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
    expect(code(() => consumeResponse(state, t))).not.toBe("ok");
  }
  expect(code(() => consumeResponse(state, resp.subarray(0, 100)))).toBe("malformed");
});

// Issue 14, 10: the response's mac1 was keyed by the initiator's public key, so a relay or seed holding
// candidate identities could tell who initiated by trying each. Now it is keyed by the initiation's mac1.
test("the response's mac1 does not name the initiator to someone holding only public keys", () => {
  const { message } = createInitiation(A, B.public, new Uint8Array(0), 1, 10n);
  const resp = consumeInitiation(B, mac1Key(B.public), message, () => true).respond(2, new Uint8Array(0)).message;
  const body = resp.subarray(0, resp.length - 16), tag = Buffer.from(resp.subarray(resp.length - 16));
  for (const candidate of [A, B, C]) expect(Buffer.from(hmac(mac1Key(candidate.public), body).subarray(0, 16)).equals(tag)).toBe(false);
});

test("cookie reply: 52 bytes, opens only for the initiation it answers, and its cookie makes a valid mac2", () => {
  const first = createInitiation(A, B.public, new Uint8Array(0), 7, 10n);
  const secret = new Uint8Array(32).fill(5);
  const cookie = cookieFor(secret, "link|a");
  const reply = createCookieReply(cookieKey(B.public), first.message, cookie);
  expect(reply.length).toBe(COOKIE_REPLY_BYTES);
  expect(reply.length * 100).toBeLessThan(first.message.length);
  expect(consumeCookieReply(first.state, reply)).toEqual(cookie);
  const other = createInitiation(A, B.public, new Uint8Array(0), 7, 11n); // same index, another initiation
  expect(code(() => consumeCookieReply(other.state, reply))).toBe("decrypt");
  const forged = createCookieReply(cookieKey(C.public), first.message, cookie); // not from B
  expect(code(() => consumeCookieReply(first.state, forged))).toBe("decrypt");
  expect(initiationMac2Valid(cookie, first.message)).toBe(false);
  const second = createInitiation(A, B.public, new Uint8Array(0), 8, 12n, cookie);
  expect(initiationMac1Valid(mac1Key(B.public), second.message)).toBe(true);
  expect(initiationMac2Valid(cookie, second.message)).toBe(true);
  expect(initiationMac2Valid(cookieFor(secret, "link|mallory"), second.message)).toBe(false);
});

// An attacker who knows B's public key can always compute an initiation's mac1 (mac2 stays zero:
// no cookie); one who saw the initiation can compute its response's mac1 (keyed by the initiation's
// mac1). Re-MAC a tampered message to reach the checks behind mac1, as a real attacker would.
function remac(message: Uint8Array, to: typeof A.public): Uint8Array {
  const body = message.subarray(0, message.length - 32);
  return Uint8Array.from([...body, ...hmac(mac1Key(to), body).subarray(0, 16), ...new Uint8Array(16)]);
}
function remacResponse(response: Uint8Array, initiation: Uint8Array): Uint8Array {
  const initMac1 = initiation.subarray(initiation.length - 32, initiation.length - 16);
  const key = hash(new TextEncoder().encode("trellis mac1 response v1"), initMac1);
  const body = response.subarray(0, response.length - 16);
  return Uint8Array.from([...body, ...hmac(key, body).subarray(0, 16)]);
}

test("tampered initiations with a valid mac1 are refused by decryption, not by accident", () => {
  const { message } = createInitiation(A, B.public, new Uint8Array(0), 1, 10n);
  // Flip one byte in the encrypted static part (after sender, ephemerals and the KEM ciphertext).
  const staticAt = 4 + 32 + 1184 + 1088 + 10;
  const t = Uint8Array.from(message);
  t[staticAt] ^= 1;
  expect(code(() => consumeInitiation(B, mac1Key(B.public), remac(t, B.public), () => true))).toBe("decrypt");
  // Flip one byte in the encrypted signature: accept() passes, verify() refuses (decrypt).
  const s = Uint8Array.from(message);
  s[message.length - 32 - 100] ^= 1;
  const r = consumeInitiation(B, mac1Key(B.public), remac(s, B.public), () => true);
  expect(code(() => r.verify())).toBe("decrypt");
});

test("claims beyond MAX_CLAIMS are refused on both sides", () => {
  expect(code(() => createInitiation(A, B.public, new Uint8Array(MAX_CLAIMS + 1), 1, 10n))).toBe("malformed");
  expect(code(() => createInitiation(A, B.public, new Uint8Array(MAX_CLAIMS), 1, 10n))).toBe("ok");
  const { message } = createInitiation(A, B.public, new Uint8Array(0), 1, 10n);
  const r = consumeInitiation(B, mac1Key(B.public), message, () => true);
  expect(code(() => r.respond(2, new Uint8Array(MAX_CLAIMS + 1)))).toBe("malformed");
});

test("tampered responses with a valid mac1 are refused by decryption; a response to another handshake by its index", () => {
  const { message, state } = createInitiation(A, B.public, new Uint8Array(0), 7, 10n);
  const resp = consumeInitiation(B, mac1Key(B.public), message, () => true).respond(2, new Uint8Array(0)).message;
  const t = Uint8Array.from(resp);
  t[resp.length - 16 - 50] ^= 1; // inside the encrypted payload (claims, signature)
  expect(code(() => consumeResponse(state, t))).toBe("bad-mac1"); // as sent: mac1 catches it
  expect(code(() => consumeResponse(state, remacResponse(t, message)))).toBe("decrypt");
  const other = createInitiation(A, B.public, new Uint8Array(0), 8, 11n);
  expect(code(() => consumeResponse(other.state, resp))).toBe("unknown-index");
  expect(code(() => consumeResponse(state, resp))).toBe("ok");
});

test("open() refuses ciphertexts shorter than a tag; equalBytes() refuses different lengths", () => {
  const key = new Uint8Array(32).fill(1);
  const sealed = seal(key, 0, new Uint8Array(0), new Uint8Array(0)); // just a tag
  expect(open(key, 0, new Uint8Array(0), sealed)).toEqual(new Uint8Array(0));
  expect(open(key, 0, new Uint8Array(0), sealed.subarray(0, 15))).toBeNull();
  expect(open(key, 0, new Uint8Array(0), new Uint8Array(0))).toBeNull();
  expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]))).toBe(false);
  expect(equalBytes(new Uint8Array([1, 2, 0]), new Uint8Array([1, 2]))).toBe(false);
  expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
  expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
});
