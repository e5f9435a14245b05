// How the session layer signs and checks handshakes: in the runtime asynchronously, or in noble synchronously.
//
// The runtime's ML-DSA-65 (src/identity/fastsig.ts: BoringSSL through WebCrypto) signs in ~0.3 ms and
// checks in ~0.14 ms where noble blocks the event loop ~13 ms and ~3 ms, but answers only with a promise.
// Same FIPS 204 signatures either way, so the wire does not change. The synchronous signer is for tests
// and simulations that want every handshake step done before the call that started it returns.
import { sign, verify, type Identity, type PublicIdentity } from "../identity/identity.ts";
import { signAsync, verifyAsync } from "../identity/fastsig.ts";

/** A signature or a check now (synchronous signer) or later (the runtime's). */
export type Maybe<T> = T | Promise<T>;

export interface HandshakeSigner {
  sign(identity: Identity, context: string, msg: Uint8Array): Maybe<Uint8Array>;
  verify(pub: PublicIdentity, context: string, msg: Uint8Array, sig: Uint8Array): Maybe<boolean>;
}

/** The runtime's ML-DSA (noble where the runtime has none): never blocks for a signature's time. */
export const RUNTIME_SIGNER: HandshakeSigner = { sign: signAsync, verify: verifyAsync };

/** noble, synchronously: a handshake step completes within the call that started it. */
export const SYNC_SIGNER: HandshakeSigner = { sign, verify };

/** f(v) at once when v is a value, when it settles when it is a promise: a synchronous signer stays synchronous. */
export function andThen<T, R>(v: Maybe<T>, f: (v: T) => Maybe<R>): Maybe<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}
