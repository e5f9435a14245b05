// The handshake as pure functions: build and consume initiation and response. No I/O, no clocks, no state
// beyond what is passed in; the session layer (src/session/sessions.ts) owns timers, retries and indexes.
//
// Pattern: Noise IK with KEMs as in PQNoise's pqIK (Angel et al., CCS 2022), hybrid with X25519 (both
// secrets go through the same HKDF chain, as PQXDH and Rosenpass combine them), plus SIGMA-style
// ML-DSA-65 signatures by both sides over the transcript hash. See docs/PROTOCOL.md for the steps.
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { x25519 } from "@noble/curves/ed25519.js";
import {
  decodePublicIdentity, DSA_SIGNATURE_BYTES, encodePublicIdentity, PUBLIC_IDENTITY_BYTES, sign, verify,
  type Identity, type PublicIdentity,
} from "../identity/identity.ts";
import { HandshakeError } from "./errors.ts";
import { equalBytes, hash, hkdf2, hmac, open, seal } from "./kdf.ts";
import { concat, decodeInitiation, decodeResponse, MAC1_BYTES, MAX_CLAIMS, TIMESTAMP_BYTES, u16le, u32le } from "./messages.ts";

const enc = new TextEncoder();
export const PROTOCOL_NAME = "trellis-v1 pqIK+sig ML-KEM-768 X25519 ML-DSA-65 AES-256-GCM SHA-256";
const PROLOGUE = enc.encode("trellis handshake v1");
const LABEL_MAC1 = enc.encode("trellis mac1 v1");
export const SIG_CONTEXT_INIT = "trellis handshake initiator v1";
export const SIG_CONTEXT_RESP = "trellis handshake responder v1";
const EMPTY = new Uint8Array(0);

/** Keys for the data path; `send` seals what this side sends. */
export interface TransportKeys {
  send: Uint8Array;
  recv: Uint8Array;
}

export interface InitiatorState {
  readonly remote: PublicIdentity;
  readonly sender: number;
  readonly ck: Uint8Array;
  readonly h: Uint8Array;
  readonly eX: Uint8Array;
  readonly eXPub: Uint8Array;
  readonly eKemSecret: Uint8Array;
  readonly local: Identity;
}

/** The key that keys mac1 for messages *to* the holder of `pub`. */
export function mac1Key(pub: PublicIdentity): Uint8Array {
  return hash(LABEL_MAC1, encodePublicIdentity(pub));
}

function mac1(key: Uint8Array, macced: Uint8Array): Uint8Array {
  return hmac(key, macced).subarray(0, MAC1_BYTES);
}

/** ck and h after the prologue and the responder's static identity (the IK pre-message). */
function initialState(responder: PublicIdentity): { ck: Uint8Array; h: Uint8Array } {
  const ck = hash(enc.encode(PROTOCOL_NAME));
  const h = hash(hash(ck, PROLOGUE), encodePublicIdentity(responder));
  return { ck, h };
}

function checkClaims(claims: Uint8Array): void {
  if (claims.length > MAX_CLAIMS) throw new HandshakeError("malformed", `claims of ${claims.length} bytes exceed ${MAX_CLAIMS}`);
}

/** Build an initiation to `remote`. ~25 ms: one ML-DSA signature. */
export function createInitiation(local: Identity, remote: PublicIdentity, claims: Uint8Array, sender: number, timestamp: bigint): { message: Uint8Array; state: InitiatorState } {
  checkClaims(claims);
  let { ck, h } = initialState(remote);
  const eX = x25519.utils.randomSecretKey();
  const eXPub = x25519.getPublicKey(eX);
  const eKem = ml_kem768.keygen();
  h = hash(h, eXPub, eKem.publicKey);
  const dhES = x25519.getSharedSecret(eX, remote.x25519);
  const { cipherText: staticCt, sharedSecret: ssS } = ml_kem768.encapsulate(remote.kem);
  h = hash(h, staticCt);
  let k: Uint8Array;
  [ck, k] = hkdf2(ck, concat([dhES, ssS]));
  const ts = new Uint8Array(TIMESTAMP_BYTES);
  new DataView(ts.buffer).setBigUint64(0, timestamp, true);
  const encStatic = seal(k, 0, h, concat([encodePublicIdentity(local.public), ts, u16le(claims.length), claims]));
  h = hash(h, encStatic);
  const sig = sign(local, SIG_CONTEXT_INIT, h);
  const encSig = seal(k, 1, h, sig);
  h = hash(h, encSig);
  const body = concat([u32le(sender), eXPub, eKem.publicKey, staticCt, encStatic, encSig]);
  const message = concat([body, mac1(mac1Key(remote), body)]);
  return { message, state: { remote, sender, ck, h, eX, eXPub, eKemSecret: eKem.secretKey, local } };
}

/** What the responder learned from an initiation, before it commits to answering. */
export interface ReceivedInitiation {
  readonly remote: PublicIdentity;
  readonly claims: Uint8Array;
  readonly timestamp: bigint;
  readonly sender: number;
  /** Check the initiator's signature over the transcript (~4 ms); throws bad-signature. */
  verify(): void;
  /** Build the response (~25 ms: one signature) and the transport keys. */
  respond(sender: number, claims: Uint8Array): { message: Uint8Array; keys: TransportKeys };
}

/**
 * Consume an initiation: mac1 first (cheap: silence towards anyone who does not know our key), then
 * the KEM and DH, then decrypt the initiator's identity. `accept` runs before any signature work.
 */
export function consumeInitiation(local: Identity, ownMac1Key: Uint8Array, message: Uint8Array, accept: (remote: PublicIdentity, claims: Uint8Array) => true | string): ReceivedInitiation {
  const m = decodeInitiation(message);
  if (!equalBytes(mac1(ownMac1Key, m.macced), m.mac1)) throw new HandshakeError("bad-mac1", "initiation mac1 does not match our public key");
  let { ck, h } = initialState(local.public);
  h = hash(h, m.ephemeralX, m.ephemeralKem);
  let dhES: Uint8Array, ssS: Uint8Array;
  try {
    dhES = x25519.getSharedSecret(local.x25519Secret, m.ephemeralX);
    ssS = ml_kem768.decapsulate(m.staticCt, local.kemSecret);
  } catch (e) {
    throw new HandshakeError("malformed", `initiation key material rejected: ${(e as Error).message}`);
  }
  h = hash(h, m.staticCt);
  let k: Uint8Array;
  [ck, k] = hkdf2(ck, concat([dhES, ssS]));
  const plain = open(k, 0, h, m.encStatic);
  if (!plain) throw new HandshakeError("decrypt", "initiation static part does not decrypt");
  const remote = decodePublicIdentity(plain.subarray(0, PUBLIC_IDENTITY_BYTES));
  const dv = new DataView(plain.buffer, plain.byteOffset);
  const timestamp = dv.getBigUint64(PUBLIC_IDENTITY_BYTES, true);
  const claimsLen = dv.getUint16(PUBLIC_IDENTITY_BYTES + TIMESTAMP_BYTES, true);
  const claims = plain.slice(PUBLIC_IDENTITY_BYTES + TIMESTAMP_BYTES + 2);
  if (claims.length !== claimsLen) throw new HandshakeError("malformed", "initiation claims length does not match");
  const verdict = accept(remote, claims);
  if (verdict !== true) throw new HandshakeError("refused", verdict);
  const hStatic = hash(h, m.encStatic);
  return {
    remote,
    claims,
    timestamp,
    sender: m.sender,
    verify() {
      const sig = open(k, 1, hStatic, m.encSig);
      if (!sig || sig.length !== DSA_SIGNATURE_BYTES) throw new HandshakeError("decrypt", "initiation signature does not decrypt");
      if (!verify(remote, SIG_CONTEXT_INIT, hStatic, sig)) throw new HandshakeError("bad-signature", `initiator ${remote.id}: signature over the transcript does not verify`);
    },
    respond(sender, ownClaims) {
      checkClaims(ownClaims);
      let h2 = hash(hStatic, m.encSig);
      const eX = x25519.utils.randomSecretKey();
      const eXPub = x25519.getPublicKey(eX);
      h2 = hash(h2, eXPub);
      let ssE: Uint8Array, ct: Uint8Array;
      try {
        ({ cipherText: ct, sharedSecret: ssE } = ml_kem768.encapsulate(m.ephemeralKem));
      } catch (e) {
        throw new HandshakeError("malformed", `initiator's ephemeral KEM key rejected: ${(e as Error).message}`);
      }
      h2 = hash(h2, ct);
      const dhEE = x25519.getSharedSecret(eX, m.ephemeralX);
      const dhSE = x25519.getSharedSecret(eX, remote.x25519);
      let ck2: Uint8Array, k2: Uint8Array;
      [ck2, k2] = hkdf2(ck, concat([dhEE, ssE, dhSE]));
      const sig = sign(local, SIG_CONTEXT_RESP, h2);
      const payload = seal(k2, 0, h2, concat([u16le(ownClaims.length), ownClaims, sig]));
      const body = concat([u32le(sender), u32le(m.sender), eXPub, ct, payload]);
      const message = concat([body, mac1(mac1Key(remote), body)]);
      const [i2r, r2i] = hkdf2(ck2, EMPTY);
      return { message, keys: { send: r2i, recv: i2r } };
    },
  };
}

/** The receiver index of a response, to find the initiator state it answers. */
export function responseReceiver(message: Uint8Array): number {
  return decodeResponse(message).receiver;
}

/** Consume the response to our initiation: mac1, KEM and DH, decrypt, verify the responder's signature. */
export function consumeResponse(state: InitiatorState, ownMac1Key: Uint8Array, message: Uint8Array): { claims: Uint8Array; sender: number; keys: TransportKeys } {
  const m = decodeResponse(message);
  if (m.receiver !== state.sender) throw new HandshakeError("unknown-index", "response is for another handshake");
  if (!equalBytes(mac1(ownMac1Key, m.macced), m.mac1)) throw new HandshakeError("bad-mac1", "response mac1 does not match our public key");
  let h = hash(state.h, m.ephemeralX);
  let ssE: Uint8Array, dhEE: Uint8Array, dhSE: Uint8Array;
  try {
    ssE = ml_kem768.decapsulate(m.ephemeralCt, state.eKemSecret);
    dhEE = x25519.getSharedSecret(state.eX, m.ephemeralX);
    dhSE = x25519.getSharedSecret(state.local.x25519Secret, m.ephemeralX);
  } catch (e) {
    throw new HandshakeError("malformed", `response key material rejected: ${(e as Error).message}`);
  }
  h = hash(h, m.ephemeralCt);
  const [ck, k] = hkdf2(state.ck, concat([dhEE, ssE, dhSE]));
  const plain = open(k, 0, h, m.encPayload);
  if (!plain) throw new HandshakeError("decrypt", "response payload does not decrypt");
  const claimsLen = new DataView(plain.buffer, plain.byteOffset).getUint16(0, true);
  if (plain.length !== 2 + claimsLen + DSA_SIGNATURE_BYTES) throw new HandshakeError("malformed", "response claims length does not match");
  const claims = plain.slice(2, 2 + claimsLen);
  const sig = plain.subarray(2 + claimsLen);
  if (!verify(state.remote, SIG_CONTEXT_RESP, h, sig)) throw new HandshakeError("bad-signature", `responder ${state.remote.id}: signature over the transcript does not verify`);
  const [i2r, r2i] = hkdf2(ck, EMPTY);
  return { claims, sender: m.sender, keys: { send: i2r, recv: r2i } };
}
