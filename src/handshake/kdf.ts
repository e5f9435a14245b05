// Hash, HMAC, HKDF and AEAD for the handshake, Noise-style (SHA-256 and AES-256-GCM, via node:crypto).
import { createCipheriv, createDecipheriv, createHash, createHmac } from "node:crypto";

export const HASH_BYTES = 32;
export const TAG_BYTES = 16;

export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
}

export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Noise's HKDF: two 32-byte outputs from chaining key `ck` and input key material. */
export function hkdf2(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmac(ck, ikm);
  const o1 = hmac(temp, Uint8Array.of(1));
  const o2 = hmac(temp, o1, Uint8Array.of(2));
  return [o1, o2];
}

/** 12-byte AES-GCM nonce: 4 zero bytes then a little-endian 64-bit counter (as WireGuard). */
export function nonce(counter: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64LE(BigInt(counter), 4);
  return n;
}

export function seal(key: Uint8Array, counter: number, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = createCipheriv("aes-256-gcm", key, nonce(counter));
  c.setAAD(ad);
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

/** Returns null when the tag does not verify. */
export function open(key: Uint8Array, counter: number, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
  if (ciphertext.length < TAG_BYTES) return null;
  const d = createDecipheriv("aes-256-gcm", key, nonce(counter));
  d.setAAD(ad);
  d.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES));
  try {
    return Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - TAG_BYTES)), d.final()]);
  } catch {
    return null;
  }
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}
