// What the router is given: links through LinkPort (the LinkManager in a node, the in-memory fabric in
// the simulation and in whole-node tests), a clock, record crypto, and where to hand what arrives.
import type { NodeId } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import type { Framing } from "./frame.ts";
import type { RewardWeights } from "./policy.ts";
import type { DiscoveryOptions } from "./discovery.ts";
import type { DiscoveryRecord, RecordCrypto } from "./record.ts";
import type { Decision, RelayPolicy } from "./steering.ts";

/** What the router needs of a link. */
export interface RouterLink {
  readonly peer: NodeId;
  readonly state: "connecting" | "open" | "closed";
  /** A sealed frame (channelFor: "fast"): unreliable, unordered, the fast channel when there is one; false when dropped. */
  sendPacket(b: Uint8Array): boolean;
  /** A frame that is not sealed (channelFor: "probe"): unreliable, unordered, never the fast channel; false when dropped. */
  sendProbe(b: Uint8Array): boolean;
  /**
   * sendPacket for a batch, in order (runs of equal size may leave in one sendmsg); how many went. With
   * `framing` each frame sent is framing.head ‖ frame[framing.skip..] (frame.ts Framing).
   */
  sendPackets?(batch: readonly Uint8Array[], framing?: Framing): number;
  /** Reliable and ordered. */
  sendControl(b: Uint8Array): void;
  /**
   * Optional: an idle link's liveness probe on the cheapest authenticated exchange the link has (the fast
   * channel's own probe: one datagram each way, no DTLS or SCTP); `answered` gets the round trip. False
   * when the link cannot (no fast channel, or it is down or busy): the router sends a PROBE hop frame.
   */
  probeIdle?(answered: (rttMs: number) => void): boolean;
  /** The largest frame the link's fast channel takes now; undefined when any size goes. */
  readonly fastMtu?: number;
  /** What carries the link now: UDP (WebRTC), or TCP (the WebSocket to a relay, where UDP fails). */
  readonly transport?: "udp" | "tcp";
}

/** How the router asks for links. */
export interface LinkPort {
  link(peer: NodeId): RouterLink | undefined;
  /** Want a link to `peer` (idempotent, retried with backoff by the port). */
  connect(peer: NodeId): void;
  disconnect(peer: NodeId, reason: string): void;
}

/** Everything a Router is given. */
export interface RouterOptions {
  self: NodeId;
  relay: { enabled: boolean; bandwidthBps: number; maxPeers?: number };
  links: LinkPort;
  /** Milliseconds since the Unix epoch, fractions welcome (records carry it; probes measure with it). */
  now(): number;
  crypto: RecordCrypto;
  /** Close links to non-relays that carried no traffic for this long. */
  idleTimeoutMs: number;
  /** How many relays an edge node stays attached to. */
  relaysWanted?: number;
  /** Ways to reach us outside the overlay (seed URLs), put in our record. */
  hints?(): string[];
  /**
   * An end-to-end payload for us: a session packet or a signal (TYPE_SIGNAL). `src` is what the frame
   * claims (unproven until the session opens it), `link` the adjacent node it came in on, `via` the
   * first relay it passed (undefined: direct).
   */
  deliver(src: NodeId, inner: Uint8Array, link: NodeId, via: NodeId | undefined): void;
  /** deliver() for session data packets from `src` that came together (one GRO read) on `link` (default `src`); optional. */
  deliverBatch?(src: NodeId, inners: Uint8Array[], link?: NodeId, via?: NodeId): void;
  /**
   * Send a small control payload to `dst` sealed in its session (false when there is none). When given,
   * delivery reports travel this way, unsealed ones are dropped, and deliveries and link liveness from
   * data packets count only once the session opened them (Router.opened, Router.sealedReport).
   */
  sealed?(dst: NodeId, payload: Uint8Array): boolean;
  /** A verified record we keep (a looked-up member's, or a relay's). */
  onRecord?(r: DiscoveryRecord): void;
  /** Signature checks of records within budgets (./discovery.ts); without it, checked at once. */
  checks?: { run(link: NodeId, source: NodeId, key: string, check: () => void): unknown };
  /** Who may have a record passed on by another node, and the certificates to pass on with records (./discovery.ts). */
  members?: DiscoveryOptions["members"];
  certOf?: DiscoveryOptions["certOf"];
  /**
   * A neighbour asks which member holds an address or name (an opaque query): the answer to send back,
   * or undefined for none. The router only carries these; who may learn what is the node's call.
   */
  memberLookup?(from: NodeId, query: Uint8Array): Uint8Array | undefined;
  /** A neighbour answered one of our member lookups. */
  onMember?(from: NodeId, answer: Uint8Array): void;
  /** A link became usable: packets waiting for a path may go now. */
  onPathUp?(peer: NodeId): void;
  /** How the path policy weighs latency, loss and goodput (default DEFAULT_WEIGHTS). */
  weights?: RewardWeights;
  /** Each path-policy decision, for the decision log. */
  onDecision?(d: Decision): void;
  /** Packets to `dst` start taking another path (`from` undefined for the first). */
  onPathChange?(dst: NodeId, from: string | undefined, to: string): void;
  /** The relay-path policy: the bandit (default), or a fixed rule the simulation compares it with. */
  relayPolicy?: RelayPolicy;
  /** Randomness for the "random" rule (the simulation passes a seeded one). */
  random?(): number;
  log?: Log;
}
