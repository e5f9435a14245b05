// The link manager: makes and keeps WebRTC links to adjacent nodes, signalled through the seeds.
//
// Glare rule: only the node with the lower node id makes offers; the higher one sends a signed "knock"
// asking for one. Every signal is verified (signature, sender's key matches its id, addressed to us,
// fresh, not replayed) and the sender must pass accept() before any peer connection is made for it.
// A new offer or knock from a peer replaces an existing link (the peer restarted). A knock that may
// have crossed our offer waits for that offer's answer, and gets a fresh offer if none came (knocked()).
// Set-ups (answering an offer, making one) run a bounded number at once, the rest queued one per peer,
// and failed attempts back off with jitter (./setups.ts): hundreds of members joining at once converge.
// Signals go through every seed we are registered with and, when the node has a relay path to the
// peer, through the overlay too (so members still form new links when every seed is gone); the
// verifier drops the duplicate.
//
// Where the seed we register with relays, the signalling socket also carries packets between us and
// that relay (a tether, ./wslink.ts), on both ends: the node's side from its SignalClient, the seed's
// side from tetherHost(). Every link the node sees is a FallbackLink (./fallback.ts): the WebRTC link
// while UDP answers, the socket otherwise, one link to the router either way.
// When that socket closes, the peer may be gone with it (killed, restarting): its link, left on UDP alone,
// is suspected (onSuspect: the router probes it at the fast rate). If the peer comes back on a new socket
// while its UDP stayed silent, it restarted: the old link is closed and the new socket makes a new one.
import type { Identity, NodeId, PublicIdentity } from "../identity/identity.ts";
import { makeSignalAsync, SignalError, SignalVerifier, type Signal, type SignalEnvelope, type SignalKind, type SignalScreen } from "../signal/messages.ts";
import { SignalClient } from "../signal/client.ts";
import { candidates, GATHER_TIMEOUT_MS, guardUdpSockets, WebrtcLink, type Link } from "./webrtc.ts";
import { parseSeed } from "../config/schema.ts";
import { BEAT_MS, FallbackLink } from "./fallback.ts";
import { WsLink, type TetherPort, type WsSend } from "./wslink.ts";
import { Retries, sample, SetupGate, TETHER_ATTEMPTS } from "./setups.ts";

import type { Log } from "../log.ts";
import { taskNow } from "../clock.ts";

const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 15_000;
/** How often a node on its WebSocket alone tries UDP (a WebRTC link) again, at most. */
const TETHER_RETRY_MS = 5_000;
/** How long a peer may take to answer an offer: its ICE gathering (GATHER_TIMEOUT_MS at most) and a round trip. */
const ANSWER_WAIT_MS = GATHER_TIMEOUT_MS + 1_000;
/** Set-ups run at once, each counted for SETUP_SLOT_MS at most; more wait in line (one per peer), up to SETUPS_QUEUED. */
export const SETUPS_RUNNING = 24, SETUP_SLOT_MS = 3_000, SETUPS_QUEUED = 4096;
/** An offer that waited this long in line is dropped: its offerer's link times out (CONNECT_TIMEOUT_MS) before ICE and DTLS could finish. */
const OFFER_STALE_MS = 8_000;
/** How long a stopping node waits for its byes to be signed and sent. */
const STOP_BYE_MS = 1_000;

export interface LinkManagerOptions {
  identity: Identity;
  seeds: string[];
  /** Whether to link with `remote`, given the membership certificates it presented. */
  accept(remote: PublicIdentity, certs: string[]): true | string;
  screen?: SignalScreen; // whether a signal's claimed sender may cost a signature check (src/signal/messages.ts)
  /** Our membership certificates, presented in every signal. */
  proofs?(): string[];
  log?: Log;
  /** Extra local addresses offered as ICE candidates (werift skips loopback; tests on 127.0.0.1 need it). */
  hostAddresses?: string[];
  /** Send a signal to `to` through relays over the overlay; false when there is no relay path. */
  overlay?(to: NodeId, envelope: SignalEnvelope): boolean;
  /** Whether the overlay has a relay path to `to` now. */
  overlayReaches?(to: NodeId): boolean;
  /** Addresses ICE must not pair (the overlay's own, on the TUN). */
  avoidAddress?(host: string): boolean;
  /** More seed URLs whose STUN to use for new links (seeds learned from relays' records). */
  moreSeeds?(): string[];
  /** [network] ca for https:// seeds. */
  ca?: string | null;
  /** Ask relaying seeds to carry our packets on the signalling socket when UDP fails (default true). */
  tether?: boolean;
  setupsRunning?: number; // set-ups run at once (default SETUPS_RUNNING)
}

/** A socket that carries frames to one peer: ours to the seed's relay, or the seed's to a node. */
interface TetherSocketState {
  send: WsSend;
  current?: WsLink;
}

/** What a node needs of its links: the LinkManager (WebRTC, signalled through seeds), or in-memory links (./memory.ts). */
export interface Links {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** How many links exist (open or connecting). */
  readonly count: number;
  link(peer: NodeId): Link | undefined;
  /** Want a link to `peer` (idempotent, retried with backoff unless `now`). */
  connect(peer: NodeId, now?: boolean): void;
  disconnect(peer: NodeId, reason: string): void;
  /** A signal that came through the overlay. */
  handleSignal(raw: unknown): void;
  onLink(cb: (link: Link, remote: PublicIdentity) => void): void;
  onIdentity(cb: (remote: PublicIdentity) => void): void;
  onSeedRelay(cb: (relay: NodeId) => void): void;
  /** The link to a peer may be dead: the peer's seed socket closed and its link is left on UDP alone. */
  onSuspect?(cb: (peer: NodeId) => void): void;
  /** This node runs a seed: signal through it in-process. */
  attachLocalSeed?(send: (to: NodeId, envelope: SignalEnvelope) => boolean, registered?: (id: NodeId) => boolean): void;
  /** Whether node `id` is registered with one of our seeds (asked before linking to an id nothing else named). */
  present?(id: NodeId, timeoutMs: number): Promise<boolean>;
  /** This node runs a seed: the seed's side of tethers (nodes whose packets ride their seed socket). */
  tetherHost?(): TetherPort;
}

/** How a node gets its Links (a test passes in-memory ones). */
export type LinkFactory = (opts: LinkManagerOptions) => Links;

export class LinkManager implements Links {
  private readonly links = new Map<NodeId, WebrtcLink>();
  /** The links the node sees, one per peer (see FallbackLink). */
  private readonly joined = new Map<NodeId, FallbackLink>();
  private readonly sockets = new Map<NodeId, TetherSocketState>();
  private beat?: ReturnType<typeof setInterval>;
  private lastRetry = 0;
  private readonly remotes = new Map<NodeId, PublicIdentity>();
  /** When each peer may be tried again (jittered exponential backoff). */
  private readonly retries = new Retries(RETRY_MIN_MS, RETRY_MAX_MS);
  /** Set-ups running and waiting (offers we answer, offers we make). */
  private readonly gate: SetupGate;
  private readonly wanted = new Set<NodeId>();
  /** Our offer on each link still connecting: when it went out (unset while being made), whether answered. */
  private readonly offers = new Map<NodeId, { link: WebrtcLink; sent?: number; answered?: boolean }>();
  /** Knocks that may have crossed our offer, looked at again once that offer is ANSWER_WAIT_MS old (one per peer). */
  private readonly knockChecks = new Map<NodeId, ReturnType<typeof setTimeout>>();
  private readonly verifier: SignalVerifier;
  private readonly client: SignalClient;
  private readonly log: Log;
  private linkCbs: ((link: Link, remote: PublicIdentity) => void)[] = [];
  private identityCbs: ((remote: PublicIdentity) => void)[] = [];
  private seedRelayCbs: ((relay: NodeId) => void)[] = [];
  private suspectCbs: ((peer: NodeId) => void)[] = [];
  private stopped = false;
  /** The last signal being signed for each peer (signal()): the next one to it waits for it. */
  private readonly signing = new Map<NodeId, Promise<unknown>>();

  constructor(private readonly opts: LinkManagerOptions) {
    this.log = opts.log ?? (() => {});
    this.gate = new SetupGate({ running: opts.setupsRunning ?? SETUPS_RUNNING, queued: SETUPS_QUEUED, staleMs: OFFER_STALE_MS, slotMs: SETUP_SLOT_MS, defer: setImmediate, log: (m) => this.log("debug", m) });
    guardUdpSockets(this.log);
    this.verifier = new SignalVerifier(opts.identity.public.id, Date.now, opts.screen);
    this.client = new SignalClient(opts.identity, opts.seeds, (m) => void this.onSignal(m), this.log, { ca: opts.ca, proofs: opts.proofs, tether: opts.tether ?? true });
    this.client.onRegistered((relay, tether) => {
      // The relay is announced before its link opens, as when a WebRTC link to it opens later.
      if (relay) for (const cb of this.seedRelayCbs) cb(relay);
      if (tether && relay) {
        this.remotes.set(relay, tether.relay);
        for (const cb of this.identityCbs) cb(tether.relay);
        const state: TetherSocketState = { send: (f, control) => tether.socket.send(f, control) };
        this.sockets.set(relay, state);
        tether.socket.onData((f) => this.sockets.get(relay) === state && this.socketData(relay, state, f));
        tether.socket.onClose(() => this.socketGone(relay, state, "seed socket closed"));
        this.wsLink(relay, state);
      }
      for (const p of this.wanted) if (!this.links.has(p) && !this.gate.has(p)) this.attempt(p, true);
    });
  }

  /**
   * The seed's side of tethers: a registered node asks for its packets to ride its signalling socket.
   * It must pass accept() like any link; then its frames reach the router as a link to it.
   */
  tetherHost(): TetherPort {
    return {
      open: (remote, certs, send, close) => {
        const verdict = this.opts.accept(remote, certs);
        if (verdict !== true) return verdict;
        this.remotes.set(remote.id, remote);
        for (const cb of this.identityCbs) cb(remote);
        const state: TetherSocketState = { send };
        this.sockets.get(remote.id)?.current?.close("replaced by a new registration");
        this.sockets.set(remote.id, state);
        // After the seed's "registered" went out: the router speaks on a new link at once, and the node
        // takes binary frames only once it knows the socket carries them.
        queueMicrotask(() => this.sockets.get(remote.id) === state && !this.stopped && this.wsLink(remote.id, state));
        void close;
        return { data: (f) => this.sockets.get(remote.id) === state && this.socketData(remote.id, state, f), closed: () => this.socketGone(remote.id, state, "its seed socket closed") };
      },
    };
  }

  /**
   * A WsLink on `state`'s socket, joined to the peer's link (made and announced when there is none). A
   * link that lost its socket and heard nothing on UDP since is the link to a peer that went away (a
   * restarted process has a new socket and no WebRTC link): it is closed, and the new socket makes a new
   * link, instead of reviving the old one on its stale UDP transport.
   */
  private wsLink(peer: NodeId, state: TetherSocketState): WsLink {
    if (state.current?.state === "open") return state.current;
    const old = this.joined.get(peer);
    if (old?.state === "open" && old.orphaned()) old.close("the peer came back on a new socket, silent on UDP since its old one closed (restarted)");
    const ws = new WsLink(peer, state.send);
    state.current = ws;
    this.join(peer, (l) => l.attach(ws));
    return ws;
  }

  private socketData(peer: NodeId, state: TetherSocketState, frame: Uint8Array): void {
    if (this.stopped) return;
    this.wsLink(peer, state).data(frame);
  }

  private socketGone(peer: NodeId, state: TetherSocketState, reason: string): void {
    if (this.sockets.get(peer) !== state) return;
    this.sockets.delete(peer);
    state.current?.close(reason);
    // Left on UDP alone: the peer may be gone with its socket (an idle link would look alive for seconds).
    if (this.joined.get(peer)?.state === "open") for (const cb of this.suspectCbs) cb(peer);
  }

  /**
   * Give `peer`'s FallbackLink a transport (`take`), making it if it has none open and announcing it only
   * then (whoever hears of a link speaks on it at once); undefined without the peer's identity.
   */
  private join(peer: NodeId, take: (l: FallbackLink) => void): FallbackLink | undefined {
    const j = this.joined.get(peer);
    if (j && j.state === "open") return (take(j), j);
    const remote = this.remotes.get(peer);
    if (!remote || this.stopped) return undefined;
    const link = new FallbackLink(peer, this.log, taskNow);
    take(link);
    this.joined.set(peer, link);
    link.onClose(() => {
      if (this.joined.get(peer) === link) this.joined.delete(peer);
    });
    this.log("debug", `link to ${peer} open`);
    for (const cb of this.linkCbs) cb(link, remote);
    this.beat ??= setInterval(() => this.tickTethers(), BEAT_MS);
    return link;
  }

  /** Beats on links with both transports; peers on the socket alone get a WebRTC attempt now and then. */
  private tickTethers(): void {
    for (const l of this.joined.values()) l.beat();
    const now = Date.now();
    if (now - this.lastRetry < TETHER_RETRY_MS) return;
    this.lastRetry = now;
    const alone = [...this.joined].filter(([peer, l]) => l.hasWs && !l.hasPrimary && !this.links.has(peer) && !this.gate.has(peer)).map(([peer]) => peer);
    for (const peer of alone) this.retries.cap(peer, TETHER_RETRY_MS);
    for (const peer of sample(alone.filter((p) => this.retries.due(p)), TETHER_ATTEMPTS)) this.attempt(peer, false);
  }

  private get self(): NodeId {
    return this.opts.identity.public.id;
  }

  async start(): Promise<void> {
    this.client.start();
  }

  /** This node runs a seed: signal through it in-process (members registered there reach us and we them). */
  attachLocalSeed(send: (to: NodeId, envelope: SignalEnvelope) => boolean, registered?: (id: NodeId) => boolean): void {
    this.client.attachLocal(send, registered);
  }

  present(id: NodeId, timeoutMs: number): Promise<boolean> {
    return this.client.present(id, timeoutMs);
  }

  onLink(cb: (link: Link, remote: PublicIdentity) => void): void {
    this.linkCbs.push(cb);
  }

  onIdentity(cb: (remote: PublicIdentity) => void): void {
    this.identityCbs.push(cb);
  }

  /** A seed we registered with is also a relay (its node id). */
  onSeedRelay(cb: (relay: NodeId) => void): void {
    this.seedRelayCbs.push(cb);
  }

  onSuspect(cb: (peer: NodeId) => void): void {
    this.suspectCbs.push(cb);
  }

  /** How many peers have a link (open or connecting). */
  get count(): number {
    let n = this.links.size;
    for (const p of this.joined.keys()) if (!this.links.has(p)) n++;
    return n;
  }

  /** The link to `peer`, if one exists (open, or a WebRTC link still connecting). */
  link(peer: NodeId): (Link & { transport?: "udp" | "tcp" }) | undefined {
    const j = this.joined.get(peer);
    return j?.state === "open" ? j : this.links.get(peer);
  }

  /** Ensure a link to `peer` (idempotent; retried with backoff unless `now`). */
  connect(peer: NodeId, now = false): void {
    if (this.stopped || peer === this.self) return;
    this.wanted.add(peer);
    const socket = this.sockets.get(peer);
    if (socket) this.wsLink(peer, socket);
    if (this.links.has(peer) || this.gate.has(peer)) return;
    this.attempt(peer, now);
  }

  /** Stop wanting a link to `peer` and close any there is. */
  disconnect(peer: NodeId, reason: string): void {
    this.wanted.delete(peer);
    this.retries.reset(peer);
    this.gate.cancel(peer);
    const link = this.links.get(peer);
    if (link?.state === "open") this.signal("bye", peer);
    link?.close(reason);
    this.joined.get(peer)?.close(reason);
  }

  private attempt(peer: NodeId, force: boolean): void {
    if (!force && !this.retries.due(peer)) return;
    this.retries.attempted(peer);
    // Retried when a seed takes our registration, or when asked again once the overlay reaches the peer.
    if (!this.client.registered && !this.opts.overlayReaches?.(peer)) return;
    if (this.self < peer) this.setup(peer, () => void this.offer(peer));
    else this.signal("knock", peer);
  }

  /** Run a set-up with `peer` (`start` makes its link at once) when the gate has room for it. */
  private setup(peer: NodeId, start: () => void): void {
    const r = this.gate.admit(peer, () => (this.stopped ? this.gate.done(peer) : start()));
    if (r !== "started") this.log("debug", `set-up with ${peer} ${r}: ${this.gate.running} running, ${this.gate.queued} waiting`);
  }

  /**
   * Sign a signal in the runtime (~0.3 ms, where noble blocks the event loop ~13 ms: a relay answers a
   * crowd's offers) and send it; signals to one peer leave in the order asked.
   */
  private signal(kind: SignalKind, to: NodeId, sdp?: string): void {
    const now = Date.now(), certs = this.opts.proofs?.() ?? [];
    const next = (this.signing.get(to) ?? Promise.resolve()).then(async () => {
      const envelope = await makeSignalAsync(this.opts.identity, kind, to, sdp, now, certs);
      if (this.stopped && kind !== "bye") return; // a stopping node's byes still go (stop() waits for them)
      const bySeed = this.client.send(to, envelope);
      const byOverlay = this.opts.overlay?.(to, envelope) ?? false;
      if (!bySeed && !byOverlay) this.log("debug", `no seed or relay path to carry ${kind} to ${to}`);
    }).catch((e) => this.log("warn", `${kind} to ${to} not sent: ${(e as Error).message}`));
    this.signing.set(to, next);
    void next.then(() => this.signing.get(to) === next && this.signing.delete(to));
  }

  /** A signal that came through the overlay (a relay path) rather than a seed. */
  handleSignal(raw: unknown): void {
    void this.onSignal(raw);
  }

  /** Hints we were told that are not seed URLs: skipped, each logged once (a record's hint is anyone's word). */
  private readonly badHints = new Set<string>();

  /** The host:port of a seed URL (validated as configured seeds are), or undefined for anything else. */
  private seedHost(url: string): string | undefined {
    try {
      return new URL(parseSeed(url)).host;
    } catch {
      if (!this.badHints.has(url) && this.badHints.size < 256) {
        this.badHints.add(url);
        this.log("info", `ignoring ${JSON.stringify(url.slice(0, 80))} as a seed: not an http:// or https:// URL`);
      }
      return undefined;
    }
  }

  private newLink(peer: NodeId): WebrtcLink {
    const old = this.links.get(peer); // out of the map first: its close must not end the set-up (gate slot) the new link takes over
    this.links.delete(peer);
    old?.close("replaced by a new link");
    // werift asks only the first STUN server: seeds that answer us now first, then relays' hints, then the rest.
    const stun = new Set<string>();
    for (const s of [...this.client.registeredUrls(), ...(this.opts.moreSeeds?.() ?? []), ...this.opts.seeds]) {
      const host = this.seedHost(s);
      if (host) stun.add(`stun:${host}`);
    }
    const link = new WebrtcLink(peer, [...stun], this.log, this.opts.hostAddresses, this.opts.avoidAddress);
    this.links.set(peer, link);
    link.onOpen(() => {
      this.retries.reset(peer);
      if (this.links.get(peer) === link) this.gate.done(peer);
      if (!this.join(peer, (l) => l.adopt(link))) link.close("no verified identity for the peer");
    });
    link.onClose((reason) => {
      if (this.links.get(peer) === link) {
        this.links.delete(peer);
        this.gate.done(peer);
      }
      if (this.offers.get(peer)?.link === link) this.offers.delete(peer);
      this.log("debug", `link to ${peer} closed: ${reason}`);
    });
    return link;
  }

  private async offer(peer: NodeId): Promise<void> {
    const link = this.newLink(peer);
    const o: { link: WebrtcLink; sent?: number } = { link };
    this.offers.set(peer, o);
    try {
      const sdp = await link.offer();
      if (link.state === "closed") return;
      this.log("debug", `offer to ${peer}: candidates ${candidates(sdp)}`);
      this.signal("offer", peer, sdp);
      o.sent = Date.now();
    } catch (e) {
      link.close(`offer failed: ${(e as Error).message}`);
    }
  }

  private async onSignal(raw: unknown): Promise<void> {
    let s: Signal;
    try {
      s = await this.verifier.verifyAsync(raw);
    } catch (e) {
      if (e instanceof SignalError && e.code !== "replay") this.log(e.code === "not-admitted" ? "debug" : "info", `signal dropped: ${e.message}`);
      return;
    }
    const verdict = this.opts.accept(s.remote, s.certs);
    if (verdict !== true) {
      this.log("info", `signal ${s.kind} from ${s.from} refused: ${verdict}`);
      return;
    }
    this.remotes.set(s.from, s.remote);
    for (const cb of this.identityCbs) cb(s.remote);
    try {
      switch (s.kind) {
        case "offer": {
          const from = s.from, offer = s.sdp;
          if (offer) this.setup(from, () => void this.answer(from, offer));
          return;
        }
        case "answer": {
          const link = this.links.get(s.from);
          const o = this.offers.get(s.from);
          if (o && o.link === link) o.answered = true;
          if (link && link.state === "connecting" && s.sdp) await link.accept(s.sdp);
          return;
        }
        case "knock":
          if (this.self < s.from) this.knocked(s.from);
          return;
        case "bye":
          this.links.get(s.from)?.close("peer said bye");
          return;
      }
    } catch (e) {
      this.log("warn", `signal ${s.kind} from ${s.from}: ${(e as Error).message}`);
      this.links.get(s.from)?.close("signalling failed");
    }
  }

  private async answer(peer: NodeId, offer: string): Promise<void> {
    const link = this.newLink(peer);
    try {
      const sdp = await link.answer(offer);
      this.log("debug", `answer to ${peer}: candidates ${candidates(sdp)}`);
      if (link.state !== "closed") this.signal("answer", peer, sdp);
    } catch (e) {
      this.log("warn", `signal offer from ${peer}: ${(e as Error).message}`);
      link.close("signalling failed");
    }
  }

  /**
   * A knock: the peer has no link to us (it may have restarted), and we are the offerer: offer a fresh link
   * unless one is on its way: waiting its turn (the gate), being made, or answered (the knock left before our
   * offer reached the peer). One the peer may still be answering (under load, signals and ICE gathering take
   * seconds: replacing it would start the same set-up over and over) is looked at again once ANSWER_WAIT_MS
   * old: still unanswered, it went to where the peer was before a restart, and a fresh offer goes out then.
   * Knocks come only from verified, admitted peers (onSignal): at most the offer such a knock costs anyway.
   */
  private knocked(peer: NodeId): void {
    if (this.gate.isQueued(peer)) return;
    const l = this.links.get(peer);
    const o = this.offers.get(peer);
    if (l?.state === "connecting" && o?.link === l) {
      const now = Date.now();
      if (o.sent === undefined || o.answered) return;
      if (now - o.sent < ANSWER_WAIT_MS) {
        if (!this.knockChecks.has(peer)) {
          const check = () => {
            this.knockChecks.delete(peer);
            if (this.stopped || this.offers.get(peer) !== o || o.answered || o.link.state !== "connecting") return;
            this.log("debug", `offer to ${peer} unanswered after its knock: offering again`);
            this.reoffer(peer);
          };
          this.knockChecks.set(peer, setTimeout(check, o.sent + ANSWER_WAIT_MS - now));
        }
        return;
      }
    }
    this.reoffer(peer);
  }

  /** A fresh offer to `peer`, which asked for one: its retries start over. */
  private reoffer(peer: NodeId): void {
    this.retries.reset(peer);
    this.retries.attempted(peer);
    this.setup(peer, () => void this.offer(peer));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.beat);
    for (const t of this.knockChecks.values()) clearTimeout(t);
    this.knockChecks.clear();
    this.gate.clear();
    // Bye to every peer with an open link, before closing any (a FallbackLink's close closes its WebRTC
    // link: asked after, no peer was told, and each waited for its own timeouts).
    for (const peer of new Set([...this.joined.keys(), ...this.links.keys()])) if (this.link(peer)?.state === "open") this.signal("bye", peer);
    for (const l of this.joined.values()) l.close("node stopping");
    for (const link of this.links.values()) link.close("node stopping");
    this.links.clear();
    // The byes are signed in the runtime: they leave before the seed sockets close (bounded: a stuck
    // signature must not hold up a stop).
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(this.signing.values()), new Promise((r) => (timer = setTimeout(r, STOP_BYE_MS)))]);
    clearTimeout(timer);
    await Bun.sleep(50);
    this.client.stop();
  }
}
