// The runtime's ML-KEM-768 and X25519 (./kex.ts) against noble's: each opens what the other makes, both refuse the same inputs.
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { generateIdentity } from "../identity/identity.ts";
import { dh, dhKeygen, forceNoble, kemDecapsulate, kemEncapsulate, kemKeygen, staticSecrets } from "./kex.ts";
import { consumeInitiation, consumeResponse, createInitiation, mac1Key } from "./machine.ts";
import { Sessions } from "../session/sessions.ts";
import { Hold } from "../datapath/hold.ts";
import { TYPE_RESP_FRAGMENT } from "../session/wire.ts";

const A = generateIdentity(new Uint8Array(128).fill(51));
const B = generateIdentity(new Uint8Array(128).fill(52));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const P = (1n << 255n) - 19n;
const le = (n: bigint) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 255n));
/** X25519 points of small order (RFC 7748's list, as in libsodium's blocklist): their shared secret is zero. */
const LOW_ORDER = [le(0n), le(1n), le(P - 1n), le(P), le(P + 1n),
  Uint8Array.from(Buffer.from("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", "hex")),
  Uint8Array.from(Buffer.from("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", "hex"))];
const throws = (f: () => unknown) => {
  try {
    f();
    return false;
  } catch {
    return true;
  }
};

describe("ML-KEM-768 and X25519 in the runtime and in noble", () => {
  afterEach(() => forceNoble(false));

  test("the runtime's keys are the runtime's (WebCrypto, node:crypto); forceNoble makes noble's", () => {
    expect(kemKeygen().secret).toBeInstanceOf(CryptoKey);
    expect(staticSecrets(B).kem).toBeInstanceOf(CryptoKey);
    expect(dhKeygen().secret).not.toBeInstanceOf(Uint8Array);
    expect(staticSecrets(B).dh).not.toBeInstanceOf(Uint8Array);
    forceNoble(true);
    expect(kemKeygen().secret).toBeInstanceOf(Uint8Array);
    expect(staticSecrets(B).kem).toBe(B.kemSecret);
    expect(dhKeygen().secret).toBeInstanceOf(Uint8Array);
    const { kemSeed: _, ...seedless } = A; // an identity made elsewhere, without its seed: noble's key
    forceNoble(false);
    expect(staticSecrets(seedless).kem).toBe(A.kemSecret);
  });

  test("a ciphertext made by either opens in the other to the same secret, tampered ones too (implicit rejection)", () => {
    const rt = kemEncapsulate(B.public.kem); // runtime-made, to B's static key
    expect(hex(ml_kem768.decapsulate(rt.cipherText, B.kemSecret))).toBe(hex(rt.sharedSecret));
    const nb = ml_kem768.encapsulate(B.public.kem);
    expect(hex(kemDecapsulate(nb.cipherText, staticSecrets(B).kem))).toBe(hex(nb.sharedSecret));
    for (const at of [0, 500, 1087]) {
      const t = Uint8Array.from(nb.cipherText);
      t[at] ^= 4;
      const want = hex(ml_kem768.decapsulate(t, B.kemSecret));
      expect(want).not.toBe(hex(nb.sharedSecret));
      expect(hex(kemDecapsulate(t, staticSecrets(B).kem))).toBe(want);
    }
    // An ephemeral pair from the runtime: noble encapsulates to its public key, the runtime opens it.
    const e = kemKeygen();
    const toE = ml_kem768.encapsulate(e.publicKey);
    expect(hex(kemDecapsulate(toE.cipherText, e.secret))).toBe(hex(toE.sharedSecret));
  });

  for (const noble of [false, true])
    test(`${noble ? "noble" : "runtime"}: KEM public keys with coefficients beyond q are refused; X25519 refuses low-order points, agrees on the rest`, () => {
      forceNoble(noble);
      const ff = new Uint8Array(1184).fill(0xff);
      const high = Uint8Array.from(B.public.kem);
      high[0] = 0xff;
      high[1] |= 0x0f; // first coefficient 4095 >= q
      expect(throws(() => kemEncapsulate(ff))).toBe(true);
      expect(throws(() => kemEncapsulate(high))).toBe(true);
      expect(throws(() => ml_kem768.encapsulate(high))).toBe(true);
      const mine = dhKeygen();
      const theirs = x25519.utils.randomSecretKey();
      expect(hex(dh(mine.secret, x25519.getPublicKey(theirs)))).toBe(hex(x25519.getSharedSecret(theirs, mine.publicKey)));
      expect(hex(dh(staticSecrets(A).dh, B.public.x25519))).toBe(hex(x25519.getSharedSecret(A.x25519Secret, B.public.x25519)));
      for (const u of LOW_ORDER) {
        expect(throws(() => dh(mine.secret, u))).toBe(true);
        expect(throws(() => x25519.getSharedSecret(theirs, u))).toBe(true);
      }
      // Non-canonical and high-bit u: both reduce and mask the same way.
      for (const u of [le(P + 9n), new Uint8Array(32).fill(0xff), Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 0x89 : 7 * i + 1))])
        expect(hex(dh(staticSecrets(A).dh, u))).toBe(hex(x25519.getSharedSecret(A.x25519Secret, u)));
    });

  for (const [initiator, responder] of [["runtime", "noble"], ["noble", "runtime"], ["runtime", "runtime"]] as const)
    test(`a handshake between a ${initiator} initiator and a ${responder} responder completes with the same keys`, () => {
      const mode = (m: string) => forceNoble(m === "noble");
      mode(initiator);
      const { message, state } = createInitiation(A, B.public, new Uint8Array(0), 1, 10n);
      mode(responder);
      const r = consumeInitiation(B, mac1Key(B.public), message, () => true);
      r.verify();
      const resp = r.respond(2, new Uint8Array(0));
      mode(initiator);
      const done = consumeResponse(state, resp.message);
      expect(hex(done.keys.send)).toBe(hex(resp.keys.recv));
      expect(hex(done.keys.recv)).toBe(hex(resp.keys.send));
    });

  test("in the runtime, a whole handshake calls none of noble's ML-KEM or X25519", () => {
    const spies = [spyOn(ml_kem768, "keygen"), spyOn(ml_kem768, "encapsulate"), spyOn(ml_kem768, "decapsulate"), spyOn(x25519, "getSharedSecret"), spyOn(x25519, "getPublicKey")];
    try {
      const { message, state } = createInitiation(A, B.public, new Uint8Array(0), 1, 10n);
      const r = consumeInitiation(B, mac1Key(B.public), message, () => true);
      consumeResponse(state, r.respond(2, new Uint8Array(0)).message);
      for (const s of spies) expect(s).not.toHaveBeenCalled();
    } finally {
      for (const s of spies) s.mockRestore();
    }
  });

  test("a runtime promise not settled within the call (or refused): noble answers instead, and its answer is right", () => {
    kemKeygen(); // the probe has run
    const subtle = globalThis.crypto.subtle as unknown as Record<string, () => unknown>;
    const pending = spyOn(subtle, "encapsulateBits").mockImplementation(() => new Promise(() => {}));
    const refused = spyOn(subtle, "generateKey").mockImplementation(() => Promise.reject(new Error("no")));
    try {
      const { cipherText, sharedSecret } = kemEncapsulate(B.public.kem);
      expect(pending).toHaveBeenCalled();
      expect(hex(kemDecapsulate(cipherText, staticSecrets(B).kem))).toBe(hex(sharedSecret));
      expect(kemKeygen().secret).toBeInstanceOf(Uint8Array);
      expect(refused).toHaveBeenCalled();
      const nb = ml_kem768.encapsulate(B.public.kem);
      const gone = spyOn(subtle, "decapsulateBits").mockImplementation(() => new Promise(() => {}));
      try {
        expect(hex(kemDecapsulate(nb.cipherText, staticSecrets(B).kem, B.kemSecret))).toBe(hex(nb.sharedSecret)); // our static key: noble's copy
        expect(throws(() => kemDecapsulate(nb.cipherText, staticSecrets(B).kem))).toBe(true);
      } finally {
        gone.mockRestore();
      }
    } finally {
      pending.mockRestore();
      refused.mockRestore();
    }
  });

  test("sessions with synchronous signatures run the KEM in the runtime and still answer within receive()", () => {
    const subtle = globalThis.crypto.subtle as unknown as Record<string, () => unknown>;
    const decap = spyOn(subtle, "decapsulateBits"), encap = spyOn(subtle, "encapsulateBits");
    try {
      const wire: Uint8Array[] = [];
      const mk = (me: typeof A, out: (p: Uint8Array) => void) =>
        new Sessions({ signatures: "sync", hold: new Hold(), identity: me, claims: new Uint8Array(0), accept: () => true, transmit: (_to, p) => out(p), deliver: () => {} });
      const b = mk(B, (p) => wire.push(p));
      const a = mk(A, (p) => b.receive(p, A.public.id));
      a.learn(B.public);
      a.send(B.public.id, new Uint8Array(1));
      expect(wire.some((p) => p[0] === TYPE_RESP_FRAGMENT)).toBe(true); // answered within the call
      expect(decap).toHaveBeenCalled(); // B decapsulated A's static ciphertext in the runtime
      expect(encap.mock.calls.length).toBeGreaterThanOrEqual(2); // A to B's static key, B to A's ephemeral one
    } finally {
      decap.mockRestore();
      encap.mockRestore();
    }
  });
});
