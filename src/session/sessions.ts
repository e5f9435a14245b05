// Sessions: the end-to-end keys with every peer. Runs handshakes, seals and opens data, keeps timers.
//
// Owned by the node; every method is called from its event loop. State per peer:
//   handshake  our initiation in flight (retried every rekeyTimeout + jitter, abandoned after rekeyAttemptTime)
//   current    the keypair we send with;  previous  the one before (kept for packets in flight)
//   next       a keypair we made as responder, used for sending once the initiator's first packet arrives
// Receive flow: fragment → reassemble (quotas per source and per link) → initiation (mac1; under load
// a valid mac2 or else a cookie reply and nothing more; rate limits per source, per link and in all;
// accept, timestamp, signature, respond) or response (find our handshake by index, verify, install
// keys); cookie reply → our handshake by index → keep the cookie, initiate again with mac2; data →
// keypair by index → replay check → AES-GCM open → replay window update → deliver.
//
// `via` is the claimed end-to-end sender (the node id a relay says the packet is from); `link` is the
// adjacent node it came in on (DTLS-authenticated; the same as `via` for a direct packet). Budgets are
// kept per `link|via` and per link, so rotating claimed senders on one link buys nothing.
//
// Signatures are made and checked asynchronously in the runtime (./signing.ts), so state may change
// while one is computed: after each, the work goes on only if what it was for still holds (the same
// handshake under way, the initiation still the newest, the peer not closed, the node not stopped).
// At most one initiation per claimed sender is being verified and answered at a time; budgets and
// timestamps are checked before, as before any signature work.
import type { Level } from "../log.ts";
import { randomBytes, randomInt } from "node:crypto";
import type { NodeId, PublicIdentity } from "../identity/identity.ts";
import { HandshakeError, type HandshakeErrorCode } from "../handshake/errors.ts";
import { Reassembler, fragment } from "../handshake/fragment.ts";
import {
  badInitiatorSignature, badResponderSignature, beginInitiation, consumeCookieReply, consumeInitiation, cookieFor, cookieKey, cookieReplyReceiver,
  createCookieReply, initiationMac1Valid, initiationMac2Valid, mac1Key, openResponse, responseReceiver, SIG_CONTEXT_INIT, SIG_CONTEXT_RESP,
} from "../handshake/machine.ts";
import {
  COOKIE_LIFETIME, COOKIE_SECRET_LIFETIME, HANDSHAKES_PER_SECOND_PER_LINK, HANDSHAKES_PER_SECOND_PER_SOURCE, HANDSHAKES_PER_SECOND_TOTAL,
  REKEY_JITTER, WIREGUARD_LIMITS, type Limits,
} from "./constants.ts";
import { dataReceiver, Keypair } from "./keypair.ts";
import { TokenBuckets } from "./ratelimit.ts";
import { TYPE_COOKIE_REPLY, TYPE_DATA, TYPE_INIT_FRAGMENT, TYPE_RESP_FRAGMENT } from "./wire.ts";
import { RESP_FIXED } from "../handshake/messages.ts";
import type { Handshake, HandshakeHold, IndexEntry, PeerSession, SessionsOptions, SessionStats } from "./state.ts";
import { andThen, RUNTIME_SIGNER, SYNC_SIGNER, type HandshakeSigner, type Maybe } from "./signing.ts";

/** tick() looks at keepalives, keypair expiry and held packets this often (handshake retries: every call). */
const SWEEP_MS = 1_000;

export type { HandshakeHold, SessionsOptions, SessionStats } from "./state.ts";

export class Sessions {
  readonly stats: SessionStats = {
    rxData: 0, txData: 0, rxDropped: 0, rxReplay: 0, rxBadTag: 0, rxBadMac1: 0, rxRefused: 0, rxRateLimited: 0, cookieRepliesSent: 0, cookieRepliesReceived: 0,
    handshakeErrors: 0, handshakesStarted: 0, handshakesCompleted: 0,
  };
  private readonly peers = new Map<NodeId, PeerSession>();
  private readonly indexes = new Map<number, IndexEntry>();
  private readonly reassembler: Reassembler;
  private readonly limits: Limits;
  private readonly now: () => number;
  private readonly ownMac1: Uint8Array;
  private readonly buckets: TokenBuckets;
  private readonly ownCookieKey: Uint8Array;
  /** Cookies are HMAC(secret, source); the secret changes every COOKIE_SECRET_LIFETIME (the last one still counts). */
  private cookieSecret = { current: randomBytes(32), previous: randomBytes(32), at: -Infinity };
  private lastTimestamp = 0n;
  private sweptAt = -Infinity;
  private claims: Uint8Array;
  /** Packets waiting for a handshake, by peer (kind "handshake"). */
  private readonly hold: HandshakeHold;
  private readonly signer: HandshakeSigner;
  /** Signatures being made or checked. */
  private readonly inflight = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly opts: SessionsOptions) {
    this.now = opts.now ?? Date.now;
    this.claims = opts.claims;
    this.limits = { ...WIREGUARD_LIMITS, ...opts.limits };
    this.hold = opts.hold;
    this.signer = opts.signatures === "sync" ? SYNC_SIGNER : RUNTIME_SIGNER;
    this.reassembler = new Reassembler(this.now);
    this.ownMac1 = mac1Key(opts.identity.public);
    this.buckets = new TokenBuckets(HANDSHAKES_PER_SECOND_PER_SOURCE, HANDSHAKES_PER_SECOND_PER_LINK, HANDSHAKES_PER_SECOND_TOTAL, this.now);
    this.ownCookieKey = cookieKey(opts.identity.public);
    this.cookieSecret.at = this.now();
  }

  private log(level: Level, msg: string): void {
    this.opts.log?.(level, msg);
  }

  private peer(id: NodeId): PeerSession {
    let p = this.peers.get(id);
    if (!p) this.peers.set(id, (p = { id, lastInitTimestamp: -1n, epoch: 0, installs: 0, lastSent: 0, lastReceived: 0 }));
    return p;
  }

  /** Learn a peer's public identity (from signalling); needed before we can initiate to it. */
  learn(remote: PublicIdentity): void {
    const p = this.peer(remote.id);
    p.pub = remote;
    if (this.hold.has("handshake", p.id) && !this.usable(p.current)) this.initiate(p);
  }

  /** Replace the claims sent in later handshakes (a renewed certificate); current sessions stay. */
  setClaims(claims: Uint8Array): void {
    this.claims = claims;
  }

  isEstablished(id: NodeId): boolean {
    return this.usable(this.peers.get(id)?.current);
  }

  /** Whether a handshake with `id` is under way (ours in flight, or theirs answered and not yet confirmed). */
  handshaking(id: NodeId): boolean {
    const p = this.peers.get(id);
    return p?.handshake !== undefined || p?.next !== undefined;
  }

  remote(id: NodeId): { pub: PublicIdentity; claims: Uint8Array } | undefined {
    const p = this.peers.get(id);
    return p?.pub && p.claims ? { pub: p.pub, claims: p.claims } : undefined;
  }

  private usable(kp: Keypair | undefined): kp is Keypair {
    return kp !== undefined && this.now() - kp.created < this.limits.rejectAfterTime && kp.sendCounter < this.limits.rejectAfterMessages;
  }

  /** Seal and transmit `payload` (empty = keepalive), or queue it and start a handshake. */
  send(to: NodeId, payload: Uint8Array): void {
    const p = this.peer(to);
    const kp = p.current;
    if (this.usable(kp)) {
      this.opts.transmit(to, kp.seal(payload));
      this.stats.txData++;
      p.lastSent = this.now();
      this.keepFresh(p, kp);
      return;
    }
    this.hold.put("handshake", to, payload);
    this.initiate(p);
  }

  /**
   * send() for a run of payloads to one peer: sealed with consecutive counters (Keypair.sealBatch) and
   * handed to the route layer as one batch. Any that the keypair cannot take whole go one by one.
   */
  sendBatch(to: NodeId, payloads: Uint8Array[]): void {
    const p = this.peer(to);
    const kp = p.current;
    if (payloads.length < 2 || !this.usable(kp) || kp.sendCounter + payloads.length > this.limits.rejectAfterMessages) {
      for (const q of payloads) this.send(to, q);
      return;
    }
    const sealed = kp.sealBatch(payloads);
    if (this.opts.transmitBatch) this.opts.transmitBatch(to, sealed);
    else for (const b of sealed) this.opts.transmit(to, b);
    this.stats.txData += sealed.length;
    p.lastSent = this.now();
    this.keepFresh(p, kp);
  }

  /**
   * After sending on `kp`: a new handshake once it is old (wireguard-go keepKeyFreshSending). The
   * initiator renews at rekeyAfterTime. A responder leaves that to the initiator for a keepalive's and a
   * handshake's time longer, then renews itself: after crossing initiations both sides send with keys
   * they made as responder (each side's first packet confirms the other's response), and otherwise
   * nobody would rekey before rejectAfterTime.
   */
  private keepFresh(p: PeerSession, kp: Keypair): void {
    const { rekeyAfterTime, keepaliveTimeout, rekeyTimeout, rekeyAfterMessages } = this.limits;
    const due = kp.isInitiator ? rekeyAfterTime : rekeyAfterTime + keepaliveTimeout + rekeyTimeout;
    if (this.now() - kp.created >= due || kp.sendCounter >= rekeyAfterMessages) this.initiate(p);
  }

  /** Start (or, when its retry time has come, restart) a handshake with `p`. */
  private initiate(p: PeerSession, retry = false): void {
    const now = this.now();
    if (!p.pub) return this.log("debug", `no public identity for ${p.id} yet; holding its packets`);
    if (p.handshake && !retry && now < p.handshake.retryAt) return;
    // We answered the peer's initiation: its first packet confirms those keys (and sends what waits), so
    // no crossing handshake of ours for rekeyTimeout (wireguard-go counts a response as a handshake sent).
    if (!retry && p.next && now - p.next.created < this.limits.rekeyTimeout) return;
    if (p.handshake && now - p.handshake.firstSent > this.limits.rekeyAttemptTime) {
      this.dropHandshake(p);
      const n = this.hold.drop("handshake", p.id);
      this.log("info", `handshake with ${p.id} abandoned after ${this.limits.rekeyAttemptTime / 1000}s; dropped ${n} queued packet(s)`);
      return;
    }
    const sender = this.newIndex();
    const cookie = p.cookie && now - p.cookie.at < COOKIE_LIFETIME ? p.cookie.value : undefined;
    const begun = beginInitiation(this.opts.identity, p.pub, this.claims, sender, this.timestamp(), cookie);
    const firstSent = p.handshake?.firstSent ?? now;
    this.dropHandshake(p);
    const hs: Handshake = { sender, firstSent, retryAt: now + this.limits.rekeyTimeout + randomInt(0, REKEY_JITTER), withCookie: cookie !== undefined, installs: p.installs };
    p.handshake = hs;
    this.indexes.set(sender, { peer: p }); // reserved now; a response or cookie reply finds no state until it is sent
    this.stats.handshakesStarted++;
    this.background(p.id, () =>
      andThen(this.signer.sign(this.opts.identity, SIG_CONTEXT_INIT, begun.transcript), (sig) => {
        // Retried, answered or closed meanwhile: nothing to send. Keys from a crossing handshake: moot.
        if (this.stopped || p.handshake !== hs) return;
        if (p.installs !== hs.installs && this.usable(p.current)) return void this.dropHandshake(p);
        const { message, state } = begun.finish(sig);
        hs.state = state;
        this.log("debug", `handshake initiation to ${p.id} (${message.length} bytes)`);
        for (const f of fragment(TYPE_INIT_FRAGMENT, message)) this.opts.transmit(p.id, f);
      }),
    );
  }

  private dropHandshake(p: PeerSession): void {
    if (p.handshake) this.indexes.delete(p.handshake.sender);
    p.handshake = undefined;
  }

  /**
   * Run handshake work that may wait for a signature: a synchronous signer's runs (and throws) here, as
   * before; an asynchronous one's errors are counted and logged as receive() does. `done` runs either way.
   */
  private background(via: NodeId | undefined, work: () => Maybe<void>, done?: () => void): void {
    let out: Maybe<void>;
    try {
      out = work();
    } catch (e) {
      done?.();
      throw e;
    }
    if (!(out instanceof Promise)) return done?.();
    const p: Promise<void> = out.catch((e) => this.failed(e, via)).finally(() => {
      done?.();
      this.inflight.delete(p);
    });
    this.inflight.add(p);
  }

  /** Stop: signatures still being made or checked lead to nothing (nothing sent, nothing installed). */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves once no signature is being made or checked (for tests and a clean stop). */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /**
   * Any session packet: claimed to be from `via`, arrived on the link to `link` (default: `via`, a
   * direct packet). Garbage is dropped and counted, never thrown. Returns the peer whose keys opened
   * it when it was a data packet that opened: the one sender a packet proves.
   */
  receive(packet: Uint8Array, via?: NodeId, link: string | undefined = via): NodeId | undefined {
    try {
      switch (packet[0]) {
        case TYPE_DATA:
          return this.onData(packet);
        case TYPE_INIT_FRAGMENT: {
          const m = this.reassembler.add(link ?? "-", via ?? "-", packet);
          if (m) this.onInitiation(m, via, link ?? "-");
          return;
        }
        case TYPE_RESP_FRAGMENT: {
          const m = this.reassembler.add(link ?? "-", via ?? "-", packet);
          if (m) this.onResponse(m, via);
          return;
        }
        case TYPE_COOKIE_REPLY:
          this.onCookieReply(packet);
          return;
        default:
          this.stats.rxDropped++;
      }
    } catch (e) {
      this.failed(e, via);
    }
  }

  /** Count and log what a packet's handling threw: never thrown further. */
  private failed(e: unknown, via: NodeId | undefined): void {
    if (!(e instanceof HandshakeError)) {
      this.stats.rxDropped++;
      this.log("warn", `dropped a packet${via ? ` from link ${via}` : ""}: ${(e as Error).message}`);
      return;
    }
    this.countHandshakeError(e.code);
    const level = e.code === "refused" || e.code === "bad-signature" || e.code === "replay" ? "info" : "debug";
    this.log(level, `handshake ${e.code}${via ? ` (via ${via})` : ""}: ${e.message}`);
  }

  private countHandshakeError(code: HandshakeErrorCode): void {
    if (code === "bad-mac1") this.stats.rxBadMac1++;
    else if (code === "refused") this.stats.rxRefused++;
    else this.stats.handshakeErrors++;
  }

  private onInitiation(message: Uint8Array, via: NodeId | undefined, link: string): void {
    // mac1 first: one HMAC, before any budget is charged, so junk cannot spend the budget of real peers.
    if (!initiationMac1Valid(this.ownMac1, message)) throw new HandshakeError("bad-mac1", "initiation mac1 does not match our public key");
    const source = `${link}|${via ?? "-"}`;
    // Under load, only initiators that proved they receive at their claimed source (a cookie we handed
    // them, in mac2) get any further: the rest get a 52-byte cookie reply, no state, no KEM or signature.
    if (this.buckets.underLoad() && !this.cookieValid(source, message)) {
      if (via === undefined || !(this.opts.knows?.(via) ?? true)) return void this.stats.rxRateLimited++;
      this.stats.cookieRepliesSent++;
      this.opts.transmit(via, createCookieReply(this.ownCookieKey, message, cookieFor(this.cookieSecret.current, source)));
      return;
    }
    if (!this.buckets.take(link, via ?? "-")) {
      this.stats.rxRateLimited++;
      return;
    }
    const r = consumeInitiation(this.opts.identity, this.ownMac1, message, this.opts.accept);
    const p = this.peer(r.remote.id);
    const ts = r.timestamp;
    if (ts <= p.lastInitTimestamp) throw new HandshakeError("replay", `initiation from ${r.remote.id} is not newer than the last one`);
    // One initiation per claimed sender in verification and answer: a replay of it is refused as one, a
    // newer one waits for the initiator's retry (it was charged to the budgets all the same).
    if (p.answering !== undefined) {
      if (ts <= p.answering) throw new HandshakeError("replay", `initiation from ${r.remote.id} is not newer than the one being answered`);
      this.stats.rxRateLimited++;
      return this.log("debug", `initiation from ${r.remote.id} while its last one is being answered: dropped`);
    }
    const { transcript, signature } = r.signed();
    const epoch = p.epoch;
    p.answering = ts;
    this.background(via, () =>
      andThen(this.signer.verify(r.remote, SIG_CONTEXT_INIT, transcript, signature), (ok) => {
        if (!ok) throw badInitiatorSignature(r.remote);
        if (ts <= p.lastInitTimestamp) throw new HandshakeError("replay", `initiation from ${r.remote.id} is not newer than the last one`);
        p.lastInitTimestamp = ts;
        if (this.stopped || p.epoch !== epoch) return this.log("debug", `initiation from ${p.id} verified after its session closed: not answered`);
        p.pub = r.remote;
        p.claims = r.claims;
        let claims = this.opts.responseClaims?.(r.remote, r.claims) ?? this.claims;
        // Never answer with more bytes than the initiation had: the initiator's address is not proven yet.
        if (RESP_FIXED + claims.length >= message.length) claims = new Uint8Array(0);
        const begun = r.beginResponse();
        return andThen(this.signer.sign(this.opts.identity, SIG_CONTEXT_RESP, begun.transcript), (sig) => {
          // A newer initiation answered meanwhile, or the session closed: this answer is stale.
          if (this.stopped || p.epoch !== epoch || p.lastInitTimestamp !== ts) return this.log("debug", `response to ${p.id} dropped: stale once signed`);
          const sender = this.newIndex();
          const { message: response, keys } = begun.finish(sender, claims, sig);
          const kp = new Keypair(keys, sender, r.sender, false, this.now());
          if (p.next) this.indexes.delete(p.next.localIndex);
          p.next = kp;
          this.indexes.set(sender, { peer: p, keypair: kp });
          // The initiation's age by its sender's clock: how late a loaded responder answers (its initiator retries after rekeyTimeout).
          this.log("debug", `handshake response to ${p.id} (${response.length} bytes for ${message.length} received; made ${Date.now() - Number(ts / 1000n)} ms ago by its clock)`);
          for (const f of fragment(TYPE_RESP_FRAGMENT, response)) this.opts.transmit(p.id, f);
        });
      }),
    () => {
      if (p.answering === ts) p.answering = undefined;
    });
  }

  private onResponse(message: Uint8Array, via: NodeId | undefined): void {
    const entry = this.indexes.get(responseReceiver(message));
    const hs = entry?.peer.handshake;
    const state = hs?.state;
    if (!entry || entry.keypair || !hs || !state) throw new HandshakeError("unknown-index", "response for no handshake of ours");
    if (hs.checking) throw new HandshakeError("unknown-index", "a response to this handshake is already being checked");
    const p = entry.peer;
    const res = openResponse(state, message);
    hs.checking = true;
    this.background(via, () =>
      andThen(this.signer.verify(state.remote, SIG_CONTEXT_RESP, res.transcript, res.signature), (ok) => {
        if (!ok) throw badResponderSignature(state.remote);
        // Retried (a new index), closed or stopped meanwhile: these keys are for a handshake we no longer have.
        if (this.stopped || p.handshake !== hs) return this.log("debug", `response from ${p.id} dropped: its handshake is gone`);
        const kp = new Keypair(res.keys, state.sender, res.sender, true, this.now());
        p.handshake = undefined;
        p.claims = res.claims;
        this.indexes.set(kp.localIndex, { peer: p, keypair: kp });
        this.install(p, kp);
        // The responder sends only after our first packet confirms the keys: give it one now.
        const queued = this.hold.take("handshake", p.id);
        if (queued.length === 0) this.send(p.id, new Uint8Array(0));
        for (const q of queued) this.send(p.id, q);
      }),
    () => {
      hs.checking = false;
    });
  }

  /** Whether `message` carries mac2 with the cookie `source` would have been given (this secret or the last). */
  private cookieValid(source: string, message: Uint8Array): boolean {
    const now = this.now();
    if (now - this.cookieSecret.at >= COOKIE_SECRET_LIFETIME) this.cookieSecret = { current: randomBytes(32), previous: this.cookieSecret.current, at: now };
    return initiationMac2Valid(cookieFor(this.cookieSecret.current, source), message) || initiationMac2Valid(cookieFor(this.cookieSecret.previous, source), message);
  }

  /** A responder under load sent us a cookie: keep it and initiate again at once, now with mac2. */
  private onCookieReply(reply: Uint8Array): void {
    const entry = this.indexes.get(cookieReplyReceiver(reply));
    const hs = entry?.peer.handshake;
    if (!entry || entry.keypair || !hs?.state) throw new HandshakeError("unknown-index", "cookie reply for no handshake of ours");
    const p = entry.peer;
    const cookie = consumeCookieReply(hs.state, reply);
    this.stats.cookieRepliesReceived++;
    p.cookie = { value: cookie, at: this.now() };
    // One immediate retry per initiation sent without a cookie; later ones wait for the retry timer.
    if (!hs.withCookie) this.initiate(p, true);
  }

  /** Make `kp` current; the current one becomes previous, the previous one is dropped. */
  private install(p: PeerSession, kp: Keypair): void {
    if (p.previous) this.indexes.delete(p.previous.localIndex);
    p.previous = p.current;
    p.current = kp;
    p.installs++;
    this.stats.handshakesCompleted++;
    this.opts.onEstablished?.(p.id, p.pub!, p.claims ?? new Uint8Array(0));
  }

  /** Open a data packet; returns the peer whose keys opened it (the only sender it proves). */
  private onData(packet: Uint8Array): NodeId | undefined {
    const entry = this.indexes.get(dataReceiver(packet));
    const kp = entry?.keypair;
    const now = this.now();
    if (!entry || !kp || now - kp.created >= this.limits.rejectAfterTime) {
      this.stats.rxDropped++;
      return;
    }
    const plain = kp.open(packet);
    if (plain === null) {
      this.stats.rxBadTag++;
      return;
    }
    if (plain === "replay") {
      this.stats.rxReplay++;
      return;
    }
    const p = entry.peer;
    // A keepalive asks for no keepalive back (as in WireGuard): else two idle peers trade them forever.
    if (plain.length > 0) p.lastReceived = now;
    this.stats.rxData++;
    if (kp === p.next) {
      p.next = undefined;
      this.install(p, kp);
      for (const q of this.hold.take("handshake", p.id)) this.send(p.id, q);
    }
    if (plain.length > 0) this.opts.deliver(p.id, plain);
    // The initiator of an old keypair renews it before the responder's side expires.
    const age = now - kp.created;
    if (kp === p.current && kp.isInitiator && age >= this.limits.rejectAfterTime - this.limits.keepaliveTimeout - this.limits.rekeyTimeout) this.initiate(p);
    return p.id;
  }

  /**
   * Timers: handshake retries (every call), and once a SWEEP_MS the rest: keepalives, keypair expiry
   * (usable() refuses an old keypair on its own), reassembly time-outs. Call every ~100-250 ms: a relay
   * with a thousand idle peers looks at each one's handshake only, nine calls in ten.
   */
  tick(): void {
    const now = this.now();
    const sweep = now - this.sweptAt >= SWEEP_MS;
    if (sweep) this.sweptAt = now;
    for (const p of this.peers.values()) {
      if (p.handshake && now >= p.handshake.retryAt) this.initiate(p, true);
      if (!sweep) continue;
      // Packets that waited for the peer to confirm our response, which never came: our own handshake now.
      if (!p.handshake && p.pub && !this.usable(p.current) && this.hold.has("handshake", p.id)) this.initiate(p);
      for (const k of ["previous", "next", "current"] as const) {
        const kp = p[k];
        if (kp && now - kp.created >= this.limits.rejectAfterTime) {
          this.indexes.delete(kp.localIndex);
          p[k] = undefined;
          if (k === "current") this.log("debug", `keypair with ${p.id} expired`);
        }
      }
      const kp = p.current;
      if (kp && p.lastReceived > p.lastSent && now - p.lastSent >= this.limits.keepaliveTimeout) this.send(p.id, new Uint8Array(0));
    }
    if (sweep) this.reassembler.expire();
  }

  /** Forget all keys for `id`. */
  close(id: NodeId, reason: string): void {
    const p = this.peers.get(id);
    if (!p) return;
    this.dropHandshake(p);
    p.epoch++; // an initiation being verified or answered now leads to nothing
    for (const kp of [p.current, p.previous, p.next]) if (kp) this.indexes.delete(kp.localIndex);
    p.current = p.previous = p.next = undefined;
    this.hold.drop("handshake", id);
    this.opts.onClosed?.(id, reason);
  }

  private newIndex(): number {
    for (;;) {
      const i = randomInt(1, 2 ** 32 - 1);
      if (!this.indexes.has(i)) return i;
    }
  }

  /** Strictly increasing microseconds since the epoch: initiation replay protection survives restarts. */
  private timestamp(): bigint {
    const t = BigInt(Date.now()) * 1000n;
    this.lastTimestamp = t > this.lastTimestamp ? t : this.lastTimestamp + 1n;
    return this.lastTimestamp;
  }
}
