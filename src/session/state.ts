// The session layer's ports and state: the options the node gives Sessions, its counters, and what it keeps per peer.
import type { Log } from "../log.ts";
import type { Identity, NodeId, PublicIdentity } from "../identity/identity.ts";
import type { InitiatorState } from "../handshake/machine.ts";
import type { Limits } from "./constants.ts";
import type { Keypair } from "./keypair.ts";

/**
 * Where packets wait for a handshake: the node's one hold (src/datapath/hold.ts: bounded per peer and
 * in all, expired, counted), named here as a port so the session layer imports nothing above it.
 */
export interface HandshakeHold {
  put(kind: "handshake", peer: NodeId, packet: Uint8Array): boolean;
  has(kind: "handshake", peer: NodeId): boolean;
  take(kind: "handshake", peer: NodeId): Uint8Array[];
  /** Drop (and count) what waits: the handshake was given up. */
  drop(kind: "handshake", peer: NodeId): number;
}

export interface SessionsOptions {
  identity: Identity;
  /** Opaque bytes sent encrypted in our handshake messages (name, address, certificate). */
  claims: Uint8Array;
  /** Called after mac1 and decryption, before any signature is checked; a string refuses. */
  accept(remote: PublicIdentity, claims: Uint8Array): true | string;
  transmit(to: NodeId, packet: Uint8Array): void;
  /** transmit() for a run of sealed data packets to one peer, in order (default: one by one). */
  transmitBatch?(to: NodeId, packets: Uint8Array[]): void;
  deliver(from: NodeId, payload: Uint8Array): void;
  onEstablished?(peer: NodeId, remote: PublicIdentity, claims: Uint8Array): void;
  /** The claims to answer an initiation with (default: `claims`); e.g. certificates only to those who sent theirs. */
  responseClaims?(remote: PublicIdentity, initiatorClaims: Uint8Array): Uint8Array;
  onClosed?(peer: NodeId, reason: string): void;
  /**
   * Whether a packet to `id` goes out without creating state (a peer we already know): cookie replies
   * go only to such senders, never to a sender a relay merely claims (default: all).
   */
  knows?(id: NodeId): boolean;
  log?: Log;
  now?(): number;
  limits?: Partial<Limits>;
  hold: HandshakeHold;
  /**
   * "runtime" (default): sign and check handshakes in the runtime's ML-DSA, asynchronously (./signing.ts).
   * "sync": in noble, each step done before the call returns (in-memory tests and simulations).
   */
  signatures?: "runtime" | "sync";
}

/** Our initiation under way: `state` once it is signed and sent. */
export interface Handshake {
  readonly sender: number;
  state?: InitiatorState;
  readonly firstSent: number;
  readonly retryAt: number;
  readonly withCookie: boolean;
  /** The peer's install count when it began: keys installed since (a crossing handshake) make it moot. */
  readonly installs: number;
  /** A response's signature is being checked (one at a time). */
  checking?: boolean;
}

export interface PeerSession {
  readonly id: NodeId;
  pub?: PublicIdentity;
  claims?: Uint8Array;
  current?: Keypair;
  previous?: Keypair;
  next?: Keypair;
  handshake?: Handshake;
  /** The responder's cookie (from a cookie reply) and when we got it: put into mac2 while fresh. */
  cookie?: { value: Uint8Array; at: number };
  lastInitTimestamp: bigint;
  /** The timestamp of the initiation being verified and answered (at most one at a time). */
  answering?: bigint;
  /** Bumped by close(): work begun before it is dropped. */
  epoch: number;
  /** Keypairs installed so far. */
  installs: number;
  lastSent: number;
  lastReceived: number;
}

export type IndexEntry = { peer: PeerSession; keypair?: Keypair };

export interface SessionStats {
  rxData: number;
  txData: number;
  rxDropped: number;
  rxReplay: number;
  rxBadTag: number;
  rxBadMac1: number;
  rxRefused: number;
  rxRateLimited: number;
  /** Initiations answered with a cookie reply (under load, no valid mac2): no KEM or signature work spent. */
  cookieRepliesSent: number;
  cookieRepliesReceived: number;
  handshakeErrors: number;
  handshakesStarted: number;
  handshakesCompleted: number;
}
