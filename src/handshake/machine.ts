// The handshake as pure functions: build and consume initiation and response. No I/O, no clocks, no state
// beyond what is passed in; the session layer (src/session/sessions.ts) owns timers, retries and indexes.
//
// Pattern: Noise IK with KEMs as in PQNoise's pqIK (Angel et al., CCS 2022), hybrid with X25519 (both
// secrets go through the same HKDF chain, as PQXDH and Rosenpass combine them), plus SIGMA-style
// ML-DSA-65 signatures by both sides over the transcript hash. See docs/PROTOCOL.md for the steps.
import {
  decodePublicIdentity, DSA_SIGNATURE_BYTES, encodePublicIdentity, PUBLIC_IDENTITY_BYTES, sign, verify,
  type Identity, type PublicIdentity,
} from "../identity/identity.ts";
import { HandshakeError } from "./errors.ts";
import { dh, dhKeygen, kemDecapsulate, kemEncapsulate, kemKeygen, staticSecrets, type DhSecret, type KemSecret } from "./kex.ts";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { equalBytes, hash, hkdf2, hmac, open, seal, TAG_BYTES } from "./kdf.ts";
import {
  concat, COOKIE_BYTES, COOKIE_REPLY_BYTES, decodeInitiation, decodeResponse, MAC1_BYTES, MAC2_BYTES, MAX_CLAIMS, TIMESTAMP_BYTES,
  TYPE_COOKIE_REPLY, u16le, u32le,
} from "./messages.ts";

const enc = new TextEncoder();
export const PROTOCOL_NAME = "trellis-v1 pqIK+sig ML-KEM-768 X25519 ML-DSA-65 AES-256-GCM SHA-256";
const PROLOGUE = enc.encode("trellis handshake v1");
const LABEL_MAC1 = enc.encode("trellis mac1 v1");
const LABEL_MAC1_RESPONSE = enc.encode("trellis mac1 response v1");
const LABEL_COOKIE = enc.encode("trellis cookie v1");
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
  readonly eX: DhSecret;
  readonly eXPub: Uint8Array;
  readonly eKemSecret: KemSecret;
  readonly local: Identity;
  /** Our initiation's mac1: keys the response's mac1 and binds a cookie reply to this initiation. */
  readonly mac1: Uint8Array;
}

/** The key that keys mac1 for messages *to* the holder of `pub`. */
export function mac1Key(pub: PublicIdentity): Uint8Array {
  return hash(LABEL_MAC1, encodePublicIdentity(pub));
}

function mac1(key: Uint8Array, macced: Uint8Array): Uint8Array {
  return hmac(key, macced).subarray(0, MAC1_BYTES);
}

/**
 * The key for a response's mac1: derived from the initiation's mac1, which only someone who saw the
 * initiation has. (Keyed by the initiator's public key, as WireGuard does, it would tell anyone holding
 * candidate public keys who initiated.)
 */
function responseMac1Key(initiationMac1: Uint8Array): Uint8Array {
  return hash(LABEL_MAC1_RESPONSE, initiationMac1);
}

/** Whether an initiation's mac1 is keyed by our public key (one HMAC: check before any other work). */
export function initiationMac1Valid(ownMac1Key: Uint8Array, message: Uint8Array): boolean {
  const m = decodeInitiation(message);
  return equalBytes(mac1(ownMac1Key, m.macced), m.mac1);
}

/** Whether an initiation carries mac2 made with `cookie` (one HMAC). */
export function initiationMac2Valid(cookie: Uint8Array, message: Uint8Array): boolean {
  const m = decodeInitiation(message);
  return equalBytes(hmac(cookie, m.macced2).subarray(0, MAC2_BYTES), m.mac2);
}

/** The cookie a responder hands `source`: HMAC(secret, source), from a secret it rotates (no state per source). */
export function cookieFor(secret: Uint8Array, source: string): Uint8Array {
  return hmac(secret, enc.encode(source)).subarray(0, COOKIE_BYTES);
}

/** The key cookie replies to initiations *to* the holder of `pub` are sealed with. */
export function cookieKey(pub: PublicIdentity): Uint8Array {
  return hash(LABEL_COOKIE, encodePublicIdentity(pub));
}

/**
 * A cookie reply to `initiation`: the cookie sealed under our cookie key with the initiation's mac1 as
 * associated data, so only its initiator (who knows our public key and its own mac1) can open it, and
 * only for that initiation. 52 bytes: far smaller than the initiation it answers.
 */
export function createCookieReply(ownCookieKey: Uint8Array, initiation: Uint8Array, cookie: Uint8Array): Uint8Array {
  const m = decodeInitiation(initiation);
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", ownCookieKey, nonce);
  c.setAAD(m.mac1);
  const sealed = Buffer.concat([c.update(cookie), c.final(), c.getAuthTag()]);
  return concat([Uint8Array.of(TYPE_COOKIE_REPLY, 0, 0, 0), u32le(m.sender), nonce, sealed]);
}

/** The handshake index a cookie reply answers (to find our initiator state), or throws malformed. */
export function cookieReplyReceiver(reply: Uint8Array): number {
  if (reply.length !== COOKIE_REPLY_BYTES || reply[0] !== TYPE_COOKIE_REPLY) throw new HandshakeError("malformed", `cookie reply of ${reply.length} bytes (want ${COOKIE_REPLY_BYTES})`);
  return new DataView(reply.buffer, reply.byteOffset).getUint32(4, true);
}

/** Open a cookie reply to our initiation `state`: the cookie to put in the next initiation's mac2. */
export function consumeCookieReply(state: InitiatorState, reply: Uint8Array): Uint8Array {
  if (cookieReplyReceiver(reply) !== state.sender) throw new HandshakeError("unknown-index", "cookie reply is for another handshake");
  const d = createDecipheriv("aes-256-gcm", cookieKey(state.remote), reply.subarray(8, 20));
  d.setAAD(state.mac1);
  d.setAuthTag(reply.subarray(reply.length - TAG_BYTES));
  try {
    return Uint8Array.from(Buffer.concat([d.update(reply.subarray(20, reply.length - TAG_BYTES)), d.final()]));
  } catch {
    throw new HandshakeError("decrypt", "cookie reply does not decrypt");
  }
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

/**
 * An initiation up to its signature: sign `transcript` with SIG_CONTEXT_INIT (in the runtime, or with
 * noble: the same FIPS 204 signature), then finish() builds the message. The split lets the session layer
 * sign asynchronously; createInitiation() is the two in one.
 */
export function beginInitiation(local: Identity, remote: PublicIdentity, claims: Uint8Array, sender: number, timestamp: bigint, cookie?: Uint8Array): { transcript: Uint8Array; finish(sig: Uint8Array): { message: Uint8Array; state: InitiatorState } } {
  checkClaims(claims);
  let { ck, h } = initialState(remote);
  const { publicKey: eXPub, secret: eX } = dhKeygen();
  const eKem = kemKeygen();
  h = hash(h, eXPub, eKem.publicKey);
  const dhES = dh(eX, remote.x25519);
  const { cipherText: staticCt, sharedSecret: ssS } = kemEncapsulate(remote.kem);
  h = hash(h, staticCt);
  let k: Uint8Array;
  [ck, k] = hkdf2(ck, concat([dhES, ssS]));
  const ts = new Uint8Array(TIMESTAMP_BYTES);
  new DataView(ts.buffer).setBigUint64(0, timestamp, true);
  const encStatic = seal(k, 0, h, concat([encodePublicIdentity(local.public), ts, u16le(claims.length), claims]));
  const signed = hash(h, encStatic);
  return {
    transcript: signed,
    finish(sig) {
      if (sig.length !== DSA_SIGNATURE_BYTES) throw new HandshakeError("malformed", `initiation signature of ${sig.length} bytes`);
      const encSig = seal(k, 1, signed, sig);
      const h2 = hash(signed, encSig);
      const body = concat([u32le(sender), eXPub, eKem.publicKey, staticCt, encStatic, encSig]);
      const m1 = mac1(mac1Key(remote), body);
      const m2 = cookie ? hmac(cookie, body, m1).subarray(0, MAC2_BYTES) : new Uint8Array(MAC2_BYTES);
      const message = concat([body, m1, m2]);
      return { message, state: { remote, sender, ck, h: h2, eX, eXPub, eKemSecret: eKem.secret, local, mac1: m1 } };
    },
  };
}

/** Build an initiation to `remote` (mac2 made with `cookie` when the responder gave us one). ~13 ms in noble: one ML-DSA signature. */
export function createInitiation(local: Identity, remote: PublicIdentity, claims: Uint8Array, sender: number, timestamp: bigint, cookie?: Uint8Array): { message: Uint8Array; state: InitiatorState } {
  const b = beginInitiation(local, remote, claims, sender, timestamp, cookie);
  return b.finish(sign(local, SIG_CONTEXT_INIT, b.transcript));
}

/** What the responder learned from an initiation, before it commits to answering. */
export interface ReceivedInitiation {
  readonly remote: PublicIdentity;
  readonly claims: Uint8Array;
  readonly timestamp: bigint;
  readonly sender: number;
  /**
   * The initiator's signature and the transcript it signs (throws decrypt): it must verify under
   * `remote` with SIG_CONTEXT_INIT before anything is answered. verify() is this and the check in one.
   */
  signed(): { transcript: Uint8Array; signature: Uint8Array };
  /** Check the initiator's signature over the transcript (~3 ms in noble); throws bad-signature. */
  verify(): void;
  /**
   * The response up to its signature: sign `transcript` with SIG_CONTEXT_RESP, then finish() builds the
   * message with our handshake index and claims (neither is signed) and the transport keys.
   */
  beginResponse(): { transcript: Uint8Array; finish(sender: number, claims: Uint8Array, sig: Uint8Array): { message: Uint8Array; keys: TransportKeys } };
  /** Build the response (~13 ms in noble: one signature) and the transport keys. */
  respond(sender: number, claims: Uint8Array): { message: Uint8Array; keys: TransportKeys };
}

/** The refusal of an initiation whose signature did not verify. */
export function badInitiatorSignature(remote: PublicIdentity): HandshakeError {
  return new HandshakeError("bad-signature", `initiator ${remote.id}: signature over the transcript does not verify`);
}

/** The refusal of a response whose signature did not verify. */
export function badResponderSignature(remote: PublicIdentity): HandshakeError {
  return new HandshakeError("bad-signature", `responder ${remote.id}: signature over the transcript does not verify`);
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
    const own = staticSecrets(local);
    dhES = dh(own.dh, m.ephemeralX);
    ssS = kemDecapsulate(m.staticCt, own.kem, local.kemSecret);
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
  const signed = () => {
    const sig = open(k, 1, hStatic, m.encSig);
    if (!sig || sig.length !== DSA_SIGNATURE_BYTES) throw new HandshakeError("decrypt", "initiation signature does not decrypt");
    return { transcript: hStatic, signature: sig };
  };
  const beginResponse = () => {
    let h2 = hash(hStatic, m.encSig);
    const { publicKey: eXPub, secret: eX } = dhKeygen();
    h2 = hash(h2, eXPub);
    let ssE: Uint8Array, ct: Uint8Array;
    try {
      ({ cipherText: ct, sharedSecret: ssE } = kemEncapsulate(m.ephemeralKem));
    } catch (e) {
      throw new HandshakeError("malformed", `initiator's ephemeral KEM key rejected: ${(e as Error).message}`);
    }
    h2 = hash(h2, ct);
    const dhEE = dh(eX, m.ephemeralX);
    const dhSE = dh(eX, remote.x25519);
    const [ck2, k2] = hkdf2(ck, concat([dhEE, ssE, dhSE]));
    const transcript = h2;
    return {
      transcript,
      finish(sender: number, ownClaims: Uint8Array, sig: Uint8Array) {
        checkClaims(ownClaims);
        if (sig.length !== DSA_SIGNATURE_BYTES) throw new HandshakeError("malformed", `response signature of ${sig.length} bytes`);
        const payload = seal(k2, 0, transcript, concat([u16le(ownClaims.length), ownClaims, sig]));
        const body = concat([u32le(sender), u32le(m.sender), eXPub, ct, payload]);
        const message = concat([body, mac1(responseMac1Key(m.mac1), body)]);
        const [i2r, r2i] = hkdf2(ck2, EMPTY);
        return { message, keys: { send: r2i, recv: i2r } };
      },
    };
  };
  return {
    remote,
    claims,
    timestamp,
    sender: m.sender,
    signed,
    verify() {
      const { transcript, signature } = signed();
      if (!verify(remote, SIG_CONTEXT_INIT, transcript, signature)) throw badInitiatorSignature(remote);
    },
    beginResponse,
    respond(sender, ownClaims) {
      checkClaims(ownClaims);
      const b = beginResponse();
      return b.finish(sender, ownClaims, sign(local, SIG_CONTEXT_RESP, b.transcript));
    },
  };
}

/** The receiver index of a response, to find the initiator state it answers. */
export function responseReceiver(message: Uint8Array): number {
  return decodeResponse(message).receiver;
}

/** What a response carries once opened, its signature not yet checked. */
export interface OpenedResponse {
  claims: Uint8Array;
  sender: number;
  keys: TransportKeys;
  /** The responder's signature over `transcript`: it must verify under the state's remote with SIG_CONTEXT_RESP. */
  transcript: Uint8Array;
  signature: Uint8Array;
}

/** The response to our initiation up to its signature: mac1, KEM and DH, decrypt. consumeResponse() also verifies. */
export function openResponse(state: InitiatorState, message: Uint8Array): OpenedResponse {
  const m = decodeResponse(message);
  if (m.receiver !== state.sender) throw new HandshakeError("unknown-index", "response is for another handshake");
  if (!equalBytes(mac1(responseMac1Key(state.mac1), m.macced), m.mac1)) throw new HandshakeError("bad-mac1", "response mac1 does not match our initiation");
  let h = hash(state.h, m.ephemeralX);
  let ssE: Uint8Array, dhEE: Uint8Array, dhSE: Uint8Array;
  try {
    ssE = kemDecapsulate(m.ephemeralCt, state.eKemSecret);
    dhEE = dh(state.eX, m.ephemeralX);
    dhSE = dh(staticSecrets(state.local).dh, m.ephemeralX);
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
  const signature = plain.subarray(2 + claimsLen);
  const [i2r, r2i] = hkdf2(ck, EMPTY);
  return { claims, sender: m.sender, keys: { send: i2r, recv: r2i }, transcript: h, signature };
}

/** Consume the response to our initiation: mac1, KEM and DH, decrypt, verify the responder's signature. */
export function consumeResponse(state: InitiatorState, message: Uint8Array): { claims: Uint8Array; sender: number; keys: TransportKeys } {
  const r = openResponse(state, message);
  if (!verify(state.remote, SIG_CONTEXT_RESP, r.transcript, r.signature)) throw badResponderSignature(state.remote);
  return { claims: r.claims, sender: r.sender, keys: r.keys };
}
