// Signed signalling messages between nodes (offer, answer, knock, bye), carried opaquely by seeds.
//
// The sender signs a deterministic encoding of every field with its ML-DSA-65 key and includes its
// public identity; the receiver recomputes the node id from that identity. So a seed can neither forge
// nor redirect a message, and nothing secret passes through it (an SDP holds DTLS fingerprints only).
//
// Envelope (JSON): { v: 1, kind, from, to, ts, nonce, sdp?, pub: base64, sig: base64 }
// Signed bytes: UTF-8 of JSON.stringify([1, kind, from, to, ts, nonce, sdp ?? "", certs ?? []]), context "trellis signal v1".
import { randomBytes } from "node:crypto";
import {
  decodePublicIdentity, encodePublicIdentity, isNodeId, sign, verify, type Identity, type NodeId, type PublicIdentity,
} from "../identity/identity.ts";
import { signAsync, verifyAsync } from "../identity/fastsig.ts";

export const SIGNAL_CONTEXT = "trellis signal v1";
/** What a node signs to register with a seed (the seed's challenge nonce): ./client.ts signs, src/seed verifies. */
export const REGISTER_CONTEXT = "trellis seed register v1";
export const MAX_SIGNAL_BYTES = 32 * 1024;
export const MAX_SDP = 8 * 1024;
export const CLOCK_SKEW_MS = 120_000;

export type SignalKind = "offer" | "answer" | "knock" | "bye";
const KINDS: SignalKind[] = ["offer", "answer", "knock", "bye"];

export interface SignalEnvelope {
  v: 1;
  kind: SignalKind;
  from: string;
  to: string;
  ts: number;
  nonce: string;
  sdp?: string;
  /** Membership certificates (base64) the sender presents; signed with the rest. */
  certs?: string[];
  pub: string;
  sig: string;
}

/** A verified message. */
export interface Signal {
  kind: SignalKind;
  from: NodeId;
  to: NodeId;
  ts: number;
  sdp?: string;
  certs: string[];
  remote: PublicIdentity;
}

export type SignalErrorCode = "malformed" | "too-large" | "wrong-sender" | "not-for-us" | "bad-signature" | "stale" | "replay" | "not-admitted";
export class SignalError extends Error {
  constructor(readonly code: SignalErrorCode, message: string) {
    super(message);
    this.name = "SignalError";
  }
}

function signedBytes(e: Pick<SignalEnvelope, "kind" | "from" | "to" | "ts" | "nonce" | "sdp" | "certs">): Uint8Array {
  return new TextEncoder().encode(JSON.stringify([1, e.kind, e.from, e.to, e.ts, e.nonce, e.sdp ?? "", e.certs ?? []]));
}

export function makeSignal(identity: Identity, kind: SignalKind, to: NodeId, sdp?: string, now = Date.now(), certs: string[] = []): SignalEnvelope {
  const body = signalBody(identity, kind, to, sdp, now, certs);
  return envelope(identity, body, sign(identity, SIGNAL_CONTEXT, signedBytes(body)));
}

/** makeSignal, signed in the runtime (../identity/fastsig.ts: ~0.3 ms where noble takes ~13). */
export async function makeSignalAsync(identity: Identity, kind: SignalKind, to: NodeId, sdp?: string, now = Date.now(), certs: string[] = []): Promise<SignalEnvelope> {
  const body = signalBody(identity, kind, to, sdp, now, certs);
  return envelope(identity, body, await signAsync(identity, SIGNAL_CONTEXT, signedBytes(body)));
}

function signalBody(identity: Identity, kind: SignalKind, to: NodeId, sdp: string | undefined, now: number, certs: string[]) {
  return { kind, from: identity.public.id, to, ts: now, nonce: randomBytes(12).toString("base64url"), sdp, certs };
}

function envelope(identity: Identity, body: ReturnType<typeof signalBody>, sig: Uint8Array): SignalEnvelope {
  return {
    v: 1,
    ...body,
    ...(body.sdp === undefined ? { sdp: undefined } : {}),
    pub: Buffer.from(encodePublicIdentity(identity.public)).toString("base64"),
    sig: Buffer.from(sig).toString("base64"),
  };
}

/**
 * Who may cost us a signature check, decided before it (src/node/admission.ts screen): true, or why
 * not. It sees the claimed sender and the certificates it presents, nothing verified yet.
 */
export type SignalScreen = (from: NodeId, certs: string[]) => true | string;

/** Checks a received envelope and remembers its nonce; throws SignalError. */
export class SignalVerifier {
  private seen = new Map<string, number>();

  constructor(private readonly self: NodeId, private readonly now: () => number = Date.now, private readonly screen?: SignalScreen) {}

  verify(raw: unknown): Signal {
    const c = this.check(raw);
    if (!verify(c.remote, SIGNAL_CONTEXT, signedBytes(c.e), Buffer.from(c.e.sig, "base64")))
      throw new SignalError("bad-signature", `signal from ${c.e.from}: bad signature`);
    this.remember(c.key, c.now);
    return c.signal;
  }

  /**
   * verify(), with the signature checked in the runtime (../identity/fastsig.ts: ~0.14 ms where noble
   * takes ~3); rejects with SignalError. The nonce is looked at again once the signature holds: the
   * same message twice at once is one signal and one replay, and a forged copy in flight burns nothing.
   */
  async verifyAsync(raw: unknown): Promise<Signal> {
    const c = this.check(raw);
    if (!(await verifyAsync(c.remote, SIGNAL_CONTEXT, signedBytes(c.e), Buffer.from(c.e.sig, "base64"))))
      throw new SignalError("bad-signature", `signal from ${c.e.from}: bad signature`);
    if (this.seen.has(c.key)) throw new SignalError("replay", `signal from ${c.e.from} was already seen`);
    this.remember(c.key, c.now);
    return c.signal;
  }

  /** Everything but the signature, cheapest first; throws SignalError. */
  private check(raw: unknown): { e: SignalEnvelope; remote: PublicIdentity; key: string; now: number; signal: Signal } {
    if (JSON.stringify(raw ?? null).length > MAX_SIGNAL_BYTES) throw new SignalError("too-large", "signal message too large");
    const e = raw as Partial<SignalEnvelope>;
    if (
      typeof e !== "object" || e === null || e.v !== 1 || !KINDS.includes(e.kind as SignalKind) ||
      typeof e.from !== "string" || !isNodeId(e.from) || typeof e.to !== "string" || !isNodeId(e.to) ||
      typeof e.ts !== "number" || !Number.isFinite(e.ts) || typeof e.nonce !== "string" || e.nonce.length > 64 ||
      typeof e.pub !== "string" || typeof e.sig !== "string" || (e.sdp !== undefined && (typeof e.sdp !== "string" || e.sdp.length > MAX_SDP)) ||
      (e.certs !== undefined && (!Array.isArray(e.certs) || e.certs.length > 4 || e.certs.some((c) => typeof c !== "string")))
    )
      throw new SignalError("malformed", "signal message has missing or malformed fields");
    if (e.to !== this.self) throw new SignalError("not-for-us", `signal addressed to ${e.to}`);
    const now = this.now();
    if (Math.abs(now - e.ts) > CLOCK_SKEW_MS) throw new SignalError("stale", `signal from ${e.from} is ${Math.round((now - e.ts) / 1000)} s off our clock`);
    const key = `${e.from}/${e.nonce}`;
    if (this.seen.has(key)) throw new SignalError("replay", `signal from ${e.from} was already seen`);
    let remote: PublicIdentity;
    try {
      remote = decodePublicIdentity(Buffer.from(e.pub, "base64"));
    } catch {
      throw new SignalError("malformed", "signal carries a malformed public identity");
    }
    if (remote.id !== e.from) throw new SignalError("wrong-sender", `signal claims to be from ${e.from} but carries the key of ${remote.id}`);
    // Admission first, from what we hold: a sender we would refuse costs no signature check.
    const admitted = this.screen?.(e.from as NodeId, e.certs ?? []) ?? true;
    if (admitted !== true) throw new SignalError("not-admitted", `signal from ${e.from}: ${admitted}`);
    const signal = { kind: e.kind as SignalKind, from: e.from as NodeId, to: e.to as NodeId, ts: e.ts, sdp: e.sdp, certs: e.certs ?? [], remote };
    return { e: e as SignalEnvelope, remote, key, now, signal };
  }

  private remember(key: string, now: number): void {
    this.seen.set(key, now);
    if (this.seen.size > 4096) for (const [k, t] of this.seen) if (now - t > 2 * CLOCK_SKEW_MS) this.seen.delete(k);
  }
}
