// The handshake's key agreement: ML-KEM-768 (FIPS 203) and X25519 (RFC 7748) in the runtime, noble where it has none.
//
// Measured on this machine (Bun 1.4.5): the runtime's ML-KEM-768 (BoringSSL through WebCrypto) encapsulates
// in ~0.03 ms with the key's import, decapsulates in ~0.02 ms and makes a key pair in ~0.05 ms, where
// @noble/post-quantum takes ~0.9, ~0.85-1.2 and ~0.7-1.0 ms; node:crypto's X25519 agrees in ~0.03 ms where
// @noble/curves takes ~0.45. A handshake response did ~4 ms of these on the event loop; now ~0.2 ms.
//
// WebCrypto's ML-KEM answers with a promise, but Bun does the work within the call and hands back a
// promise already settled: Bun.peek() reads it there, so the handshake stays synchronous (the same
// steps in the same order: nothing moves before mac1, cookie, budgets, accept or timestamp). Where the
// runtime's promise is not settled within the call, or it refuses an input, noble computes the answer
// instead: noble stays the authority on what is refused (both refuse the same public keys and
// low-order points; a test holds them to it). Same algorithms either way, so the wire does not change
// and either side may run either: a test opens each one's ciphertexts with the other.
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from "node:crypto";
import type { Identity } from "../identity/identity.ts";

/** An ML-KEM-768 decapsulation key: the runtime's, or noble's 2400-byte secret key. */
export type KemSecret = CryptoKey | Uint8Array;
/** An X25519 private key: node:crypto's, or noble's 32 raw bytes. */
export type DhSecret = KeyObject | Uint8Array;

/** WebCrypto's ML-KEM as Bun has it (the TypeScript DOM types do not have these calls yet). */
interface KemSubtle {
  generateKey(alg: typeof KEM, extractable: boolean, usages: string[]): Promise<CryptoKeyPair>;
  importKey(format: "raw-public" | "raw-seed", data: Uint8Array, alg: typeof KEM, extractable: boolean, usages: string[]): Promise<CryptoKey>;
  exportKey(format: "raw-public", key: CryptoKey): Promise<ArrayBuffer>;
  encapsulateBits(alg: typeof KEM, key: CryptoKey): Promise<{ sharedKey: ArrayBuffer; ciphertext: ArrayBuffer }>;
  decapsulateBits(alg: typeof KEM, key: CryptoKey, ciphertext: Uint8Array): Promise<ArrayBuffer>;
}

const KEM = { name: "ML-KEM-768" };
const subtle = globalThis.crypto?.subtle as unknown as KemSubtle | undefined;
/** DER prefixes of an X25519 SubjectPublicKeyInfo and PKCS #8 private key (RFC 8410): the raw 32 bytes follow. */
const SPKI_X25519 = Buffer.from("302a300506032b656e032100", "hex");
const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");

/** Whether the runtime does ML-KEM-768 within the call, and X25519: found out on first use, then fixed. */
let nativeKem: boolean | undefined;
let nativeDh: boolean | undefined;
let statics = new WeakMap<Identity, { kem: KemSecret; dh: DhSecret }>();

/** The runtime's answer when its promise settled within the call; undefined (noble's turn) when it refused or is still working. */
function within<T>(run: () => Promise<T>): T | undefined {
  try {
    const p = run();
    if (Bun.peek.status(p) === "fulfilled") return Bun.peek(p) as T;
    p.catch(() => {}); // not waited for: noble answers (or refuses, with its reason)
  } catch {
    // a runtime without the algorithm may throw rather than reject
  }
  return undefined;
}

function kemNative(): boolean {
  if (nativeKem === undefined) {
    nativeKem = false;
    if (typeof Bun === "undefined" || !subtle) return false;
    const pair = within(() => subtle.generateKey(KEM, false, ["encapsulateBits", "decapsulateBits"]));
    const pub = pair && within(() => subtle.exportKey("raw-public", pair.publicKey));
    const enc = pair && within(() => subtle.encapsulateBits(KEM, pair.publicKey));
    const dec = pair && enc && within(() => subtle.decapsulateBits(KEM, pair.privateKey, new Uint8Array(enc.ciphertext)));
    nativeKem = pub?.byteLength === 1184 && enc?.ciphertext.byteLength === 1088 && dec !== undefined && Buffer.from(dec).equals(Buffer.from(enc.sharedKey));
  }
  return nativeKem;
}

function dhNative(): boolean {
  if (nativeDh === undefined) {
    try {
      const a = generateKeyPairSync("x25519"), b = generateKeyPairSync("x25519");
      nativeDh = diffieHellman({ privateKey: a.privateKey, publicKey: b.publicKey }).length === 32;
    } catch {
      nativeDh = false;
    }
  }
  return nativeDh;
}

/** A fresh ML-KEM-768 key pair: the 1184-byte encapsulation key and what decapsulates. */
export function kemKeygen(): { publicKey: Uint8Array; secret: KemSecret } {
  if (kemNative() && subtle) {
    const pair = within(() => subtle.generateKey(KEM, false, ["encapsulateBits", "decapsulateBits"]));
    const pub = pair && within(() => subtle.exportKey("raw-public", pair.publicKey));
    if (pair && pub) return { publicKey: new Uint8Array(pub), secret: pair.privateKey };
  }
  const k = ml_kem768.keygen();
  return { publicKey: k.publicKey, secret: k.secretKey };
}

/** Encapsulate to `publicKey`: a 1088-byte ciphertext and the 32-byte shared secret. Throws on a key FIPS 203 refuses. */
export function kemEncapsulate(publicKey: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array } {
  if (kemNative() && subtle) {
    const key = within(() => subtle.importKey("raw-public", publicKey, KEM, true, ["encapsulateBits"]));
    const r = key && within(() => subtle.encapsulateBits(KEM, key));
    if (r) return { cipherText: new Uint8Array(r.ciphertext), sharedSecret: new Uint8Array(r.sharedKey) };
  }
  return ml_kem768.encapsulate(publicKey);
}

/**
 * Decapsulate `cipherText` (1088 bytes) with `secret`: the shared secret (FIPS 203's implicit rejection for
 * a tampered one). `nobleSecret`, the same key in noble's form, answers if the runtime does not.
 */
export function kemDecapsulate(cipherText: Uint8Array, secret: KemSecret, nobleSecret?: Uint8Array): Uint8Array {
  if (secret instanceof Uint8Array) return ml_kem768.decapsulate(cipherText, secret);
  const s = subtle && within(() => subtle.decapsulateBits(KEM, secret, cipherText));
  if (s) return new Uint8Array(s);
  if (nobleSecret) return ml_kem768.decapsulate(cipherText, nobleSecret);
  throw new Error("ML-KEM-768 decapsulation failed in the runtime");
}

/** A fresh X25519 key pair: the 32-byte public key and the private key. */
export function dhKeygen(): { publicKey: Uint8Array; secret: DhSecret } {
  if (dhNative()) {
    const { publicKey, privateKey } = generateKeyPairSync("x25519");
    return { publicKey: Uint8Array.from(publicKey.export({ format: "der", type: "spki" }).subarray(SPKI_X25519.length)), secret: privateKey };
  }
  const secret = x25519.utils.randomSecretKey();
  return { publicKey: x25519.getPublicKey(secret), secret };
}

/** X25519 of `secret` and the 32-byte `publicKey`. Throws on a low-order public key (an all-zero result), as noble does. */
export function dh(secret: DhSecret, publicKey: Uint8Array): Uint8Array {
  if (secret instanceof Uint8Array) return x25519.getSharedSecret(secret, publicKey);
  if (publicKey.length !== 32) throw new Error(`X25519 public key of ${publicKey.length} bytes`);
  const pub = createPublicKey({ key: Buffer.concat([SPKI_X25519, publicKey]), format: "der", type: "spki" });
  return diffieHellman({ privateKey: secret, publicKey: pub });
}

/** The identity's static KEM and X25519 secrets in the form kemDecapsulate() and dh() run fastest with: made once per identity. */
export function staticSecrets(identity: Identity): { kem: KemSecret; dh: DhSecret } {
  let s = statics.get(identity);
  if (!s) {
    const seed = identity.kemSeed;
    const kem = (kemNative() && subtle && seed && within(() => subtle.importKey("raw-seed", seed, KEM, false, ["decapsulateBits"]))) || identity.kemSecret;
    const dhKey = dhNative() ? createPrivateKey({ key: Buffer.concat([PKCS8_X25519, identity.x25519Secret]), format: "der", type: "pkcs8" }) : identity.x25519Secret;
    statics.set(identity, (s = { kem, dh: dhKey }));
  }
  return s;
}

/** For tests: run everything in noble, as a runtime without these algorithms would (keys made before keep their kind). */
export function forceNoble(on: boolean): void {
  nativeKem = nativeDh = on ? false : undefined;
  statics = new WeakMap();
}
