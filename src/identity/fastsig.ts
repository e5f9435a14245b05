// ML-DSA-65 through the runtime's own implementation (Bun's WebCrypto, BoringSSL): a signature in ~0.3 ms
// and a check in ~0.14 ms, where @noble/post-quantum takes ~13 ms and ~3 ms (measured on this machine).
// Asynchronous only: node:crypto's synchronous sign and verify take no context string, and every
// signature of ours has one (FIPS 204 domain separation, ./identity.ts). Same signatures, same checks:
// FIPS 204 either way (a test signs with each and checks with the other). Where the runtime has no
// ML-DSA, both fall back to noble (./identity.ts sign and verify), so the answer never depends on it.
import { DSA_SIGNATURE_BYTES, sign, verify, type Identity, type PublicIdentity } from "./identity.ts";

const ALGORITHM = "ML-DSA-65";
const encoder = new TextEncoder();
/** The algorithm with its FIPS 204 context string (WebCrypto's ContextParams). */
const withContext = (context: string) => ({ name: ALGORITHM, context: encoder.encode(context) }) as unknown as Parameters<SubtleCrypto["sign"]>[0];
const bytes = (b: Uint8Array) => b as Uint8Array<ArrayBuffer>;
const subtle = globalThis.crypto?.subtle;
/** Whether the runtime signs and checks ML-DSA-65 itself: found out on first use, then fixed. */
let native: Promise<boolean> | undefined;
const signingKeys = new WeakMap<Identity, Promise<CryptoKey | undefined>>();

function hasNative(): Promise<boolean> {
  native ??= (async () => {
    try {
      const k = (await subtle.generateKey(ALGORITHM, false, ["sign", "verify"])) as CryptoKeyPair;
      const msg = Uint8Array.of(1), params = withContext("probe");
      return await subtle.verify(params, k.publicKey, await subtle.sign(params, k.privateKey, msg), msg);
    } catch {
      return false;
    }
  })();
  return native;
}

/** The identity's signing key in the runtime's form (from its 32-byte ML-DSA seed), once per identity. */
function signingKey(identity: Identity): Promise<CryptoKey | undefined> {
  let k = signingKeys.get(identity);
  if (!k) {
    const seed = identity.dsaSeed;
    k = seed ? subtle.importKey("raw-seed", bytes(seed), ALGORITHM, false, ["sign"]).catch(() => undefined) : Promise.resolve(undefined);
    signingKeys.set(identity, k);
  }
  return k;
}

/** ./identity.ts sign(), in the runtime where it can. */
export async function signAsync(identity: Identity, context: string, msg: Uint8Array): Promise<Uint8Array> {
  const key = (await hasNative()) ? await signingKey(identity) : undefined;
  if (!key) return sign(identity, context, msg);
  return new Uint8Array(await subtle.sign(withContext(context), key, bytes(msg)));
}

/** ./identity.ts verify(), in the runtime where it can: false for any key or signature it will not take. */
export async function verifyAsync(pub: PublicIdentity | Uint8Array, context: string, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (sig.length !== DSA_SIGNATURE_BYTES) return false;
  if (!(await hasNative())) return verify(pub, context, msg, sig);
  const raw = pub instanceof Uint8Array ? pub : pub.dsa;
  try {
    const key = await subtle.importKey("raw-public", bytes(raw), ALGORITHM, false, ["verify"]);
    return await subtle.verify(withContext(context), key, bytes(sig), bytes(msg));
  } catch {
    return false;
  }
}

/** For tests: take the noble path, as a runtime without ML-DSA would. */
export function forceNoble(on: boolean): void {
  native = on ? Promise.resolve(false) : undefined;
}
