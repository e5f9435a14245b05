// Discovery: signed records of who is reachable through which relays, spread by gossip, looked up on
// demand, and the relay attachment that follows from them.
//
//   our record     re-signed when our relays (or a relay's load) change, or it ages: sent to every
//                  relay we link to (a relay sends it to every link)
//   a record in    duplicate check by (id, issued) before the signature; an edge keeps only relays'
//                  records and those of nodes it talks to or looks up; a relay passes each new record
//                  on to its other relay links (and relay records to its edges). A record passed on
//                  (not its origin's own, on its own link) is taken only for an origin admitted here
//                  (allow-listed, or a member whose certificate we verified), or with the origin's
//                  certificate (HOP_RECORD_CERT), which must admit it; else it is dropped unchecked
//                  (a relay cannot plant records of identities it made up); the answer to our own
//                  address lookup is taken without (its id is bound to the address we asked for)
//   lookups        HOP_LOOKUP by node id, or by the 10 node-id bytes of an overlay IPv6 address, to
//                  our live relays; they answer with the record or HOP_MISS, and a relay that missed
//                  hands the record to the askers when it comes within MISS_MS (a node's first packet
//                  need not wait for its next ask, a second later). HOP_MEMBER_LOOKUP (which
//                  member holds an IPv4 address or name) is carried for the node, which answers it
//   attachment     a relay links to every relay it knows; an edge keeps `relaysWanted` live relay links
// The records' relay lists also give the relay graph the forwarder searches (./forward.ts).
import type { NodeId } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import { HOP_LOOKUP, HOP_MEMBER, HOP_MEMBER_LOOKUP, HOP_MISS, HOP_RECORD, HOP_RECORD_CERT, readId, type HopKind } from "./frame.ts";
import type { LinkHealth } from "./linkhealth.ts";
import type { LinkPort } from "./ports.ts";
import { decodeRecord, encodeRecord, MAX_RECORD_RELAYS, peekRecord, RECORD_LIFETIME_MS, recordSignature, type DiscoveryRecord, type RecordCrypto } from "./record.ts";
import type { RouterStats } from "./router.ts";

export const LOOKUP_EVERY_MS = 1_000;
const PUBLISH_MIN_MS = 1_000;
/** A relay re-signs its record for a load change of 10 points at most this often. */
const LOAD_PUBLISH_MIN_MS = 30_000;
const MAX_EDGE_RELAY_RECORDS = 64;
/** Records a node keeps in all; past it the one that expires first goes (not a relay's, when there is another). */
const MAX_RECORDS = 8192;
/** Records another node's than its own first learned through one link, kept at most (a relay's gossip). */
const MAX_RECORDS_PER_LINK = 2048;
/** Relay records an edge keeps that one link told it of (so one hostile "relay" cannot fill its slots). */
const MAX_EDGE_RELAY_RECORDS_PER_LINK = 8;
/**
 * Records a neighbour passes on before we know it relays (its own record, sent first, is still having
 * its signature checked): held this long, this many per neighbour, for this many neighbours, and taken
 * once its record says it relays. Dropped, a member's record waited for its renewal (minutes).
 */
const HELD_MS = 5_000, HELD_PER_LINK = 64, HELD_LINKS = 64;
/** A relay remembers a lookup it could not answer this long, for this many records, this many askers each. */
const MISS_MS = 5_000;
const MAX_MISSES = 256;
const MAX_MISS_ASKERS = 8;

export interface DiscoveryOptions {
  self: NodeId;
  relayEnabled: boolean;
  crypto: RecordCrypto;
  now(): number;
  links: LinkPort;
  health: LinkHealth;
  stats: RouterStats;
  sendHop(peer: NodeId, kind: HopKind, body: Uint8Array): void;
  /** Whether we talk to `id` (an edge keeps the records of those). */
  talksTo(id: NodeId): boolean;
  /** Our load in percent, put in our record when we relay. */
  load(now: number): number;
  /** Ways to reach us outside the overlay (seed URLs), put in our record. */
  hints?(): string[];
  /** How many relays an edge node stays attached to (default 2). */
  relaysWanted?: number;
  /** A verified record we keep (a looked-up member's, or a relay's). */
  onRecord?(r: DiscoveryRecord): void;
  /**
   * Signature checks within budgets (the node's: per origin, per link, in all; over budget a check
   * waits, bounded, and runs later). Without it, records are checked at once (the simulation).
   */
  checks?: { run(link: NodeId, source: NodeId, key: string, check: () => void): unknown };
  /**
   * Who may have a record here when it is passed on by another node (src/node/admission.ts): vet reads
   * what we hold (true: admitted; false: the certificate given is plausible, unchecked; or why not),
   * screen checks that certificate (once per id). Without it any validly signed record is taken (the simulation).
   */
  members?: { vet(id: NodeId, certs: string[]): boolean | string; screen(id: NodeId, certs: string[]): true | string };
  /**
   * The membership certificate we verified for `id`, to pass on with its record to `to`: only to a member
   * of the same network, or to a relay our own seed announced (`ourSeed`: its membership is the seed's
   * word, never shown to us, and the records it relays for our network need the certificates).
   */
  certOf?(id: NodeId, to: NodeId, ourSeed: boolean): Uint8Array | undefined;
  /** The node's answer to a neighbour's member lookup (src/node/members.ts). */
  memberLookup?(from: NodeId, query: Uint8Array): Uint8Array | undefined;
  log: Log;
}

export class Discovery {
  // State, owned by the Router that made this (every call comes from its event loop):
  /** Verified records by node id (ours is `own`, never in here). */
  private readonly records = new Map<NodeId, DiscoveryRecord>();
  /** The link each kept record (not its owner's own) first came through, for the per-link caps. */
  private readonly learnedVia = new Map<NodeId, NodeId>();
  /** Records passed on by a neighbour not yet known to relay, by neighbour (HELD_MS). */
  private readonly held = new Map<NodeId, { at: number; records: { b: Uint8Array; certs: string[] }[] }>();
  /** Neighbours whose own record, saying they relay, is having its signature checked: since when. */
  private readonly relayChecking = new Map<NodeId, number>();
  /** Relays announced by seeds we registered with (before their records arrive). */
  private readonly announced = new Set<NodeId>();
  /** Address lookups (hex of 10 node-id bytes) and when we last sent each. */
  private readonly addressLookups = new Map<string, number>();
  /** A relay's lookups it could not answer (by node id, or hex of 10 node-id bytes): who asked, and when. */
  private readonly misses = new Map<string, { at: number; askers: Set<NodeId> }>();
  /** When an edge last tried to link to each relay (least recently tried goes first). */
  private readonly tried = new Map<NodeId, number>();
  private own?: DiscoveryRecord;
  private ownRelays = "";
  private publishedAt = -Infinity;
  /** The relay graph from the relays' records, rebuilt after any change (invalidate()). */
  private adjacency?: Map<NodeId, Set<NodeId>>;
  /** When publish() last walked the links, and whether links, relays or records changed since. */
  private walkedAt = -Infinity;
  private expiredAt = -Infinity;
  private attachedAt = -Infinity;
  private changed = true;

  constructor(private readonly opts: DiscoveryOptions) {}

  /** A seed told us it relays: attach to it. */
  addRelay(id: NodeId): void {
    if (id === this.opts.self || this.announced.has(id)) return;
    this.announced.add(id);
    this.changed = true;
    this.opts.log("info", `relay ${id} announced by a seed`);
  }

  isRelay(id: NodeId): boolean {
    return this.announced.has(id) || this.records.get(id)?.relay === true;
  }

  /** The record we hold for `id`, if any. */
  record(id: NodeId): DiscoveryRecord | undefined {
    return this.records.get(id);
  }

  get count(): number {
    return this.records.size;
  }

  /** The seed URLs relays put in their records (for STUN when our own seeds are gone). */
  relayHints(): string[] {
    const out = new Set<string>();
    for (const r of this.records.values()) if (r.relay) for (const h of r.hints) out.add(h);
    return [...out];
  }

  /** Links or records changed: the relay graph is rebuilt when next asked for. */
  invalidate(): void {
    this.adjacency = undefined;
    this.changed = true;
  }

  /** Relay adjacency from the relays' records (both directions), rebuilt when records or links change. */
  relayGraph(): Map<NodeId, Set<NodeId>> {
    if (this.adjacency) return this.adjacency;
    const adj = new Map<NodeId, Set<NodeId>>();
    const add = (a: NodeId, b: NodeId) => {
      if (!adj.has(a)) adj.set(a, new Set());
      adj.get(a)!.add(b);
    };
    for (const r of this.records.values())
      if (r.relay)
        for (const n of r.relays) {
          add(r.id, n);
          add(n, r.id);
        }
    return (this.adjacency = adj);
  }

  /** A new link to `peer`: give it our record; a relay tells a relay everything, an edge the relays. */
  linked(peer: NodeId): void {
    if (this.own) this.opts.sendHop(peer, HOP_RECORD, this.own.bytes);
    if (this.opts.relayEnabled) for (const r of this.records.values()) if (r.id !== peer && (r.relay || this.isRelay(peer))) this.pass(peer, r);
  }

  /** Pass a record on to `peer`, with its origin's certificate when we hold one (so `peer` can admit it). */
  private pass(peer: NodeId, r: DiscoveryRecord): void {
    const cert = r.id === peer ? undefined : this.opts.certOf?.(r.id, peer, this.announced.has(peer));
    if (!cert || r.bytes.length > 0xffff) return this.opts.sendHop(peer, HOP_RECORD, r.bytes);
    const body = new Uint8Array(2 + r.bytes.length + cert.length);
    body[0] = r.bytes.length >> 8;
    body[1] = r.bytes.length & 255;
    body.set(r.bytes, 2);
    body.set(cert, 2 + r.bytes.length);
    this.opts.sendHop(peer, HOP_RECORD_CERT, body);
  }

  /** A record with its origin's certificate (HOP_RECORD_CERT) from the link to `from`. */
  onRecordCert(from: NodeId, body: Uint8Array): void {
    const n = body.length >= 2 ? (body[0] << 8) | body[1] : 0;
    if (n === 0 || body.length <= 2 + n) return void this.opts.stats.recordsRefused++;
    this.onRecord(from, body.subarray(2, 2 + n), false, [Buffer.from(body.subarray(2 + n)).toString("base64")]);
  }

  /** A record from the link to `from` (HOP_RECORD); `budgeted` once its signature check has a token; `certs`: its origin's, when passed on with it. */
  onRecord(from: NodeId, b: Uint8Array, budgeted = false, certs: string[] = [], signatureChecked = false): void {
    // Cheap duplicate check before the signature (gossip brings the same record from every side).
    const peek = peekRecord(b);
    if (peek) {
      const have = peek.id === this.opts.self ? this.own : this.records.get(peek.id);
      if (have && have.issued >= peek.issued) return;
      // An edge keeps only relays' records and those of nodes it talks to.
      if (!this.opts.relayEnabled && !peek.relay && !this.opts.talksTo(peek.id) && !this.announced.has(peek.id) && !this.addressLookups.has(peek.id.slice(0, 20))) return;
    }
    // Only a node itself, or a relay passing on gossip, may hand us a record: an edge (anyone who
    // merely linked) cannot plant records for identities it made up.
    if (peek && peek.id !== from && !this.isRelay(from)) {
      if (this.hold(from, b, certs)) return;
      this.opts.stats.recordsRefused++;
      return;
    }
    // Per-link caps before the signature: what one link may fill.
    if (peek && peek.id !== from && !this.records.has(peek.id)) {
      let n = 0, relays = 0;
      for (const [id, via] of this.learnedVia) if (via === from) (n++, this.records.get(id)?.relay && relays++);
      if (n >= MAX_RECORDS_PER_LINK || (!this.opts.relayEnabled && peek.relay && relays >= MAX_EDGE_RELAY_RECORDS_PER_LINK)) {
        this.opts.stats.recordsRefused++;
        return;
      }
    }
    // Passed on by another node: only for an origin admitted here, or with a certificate that may admit
    // it (checked below, within the budget); anything else is dropped before any signature check.
    // The answer to our own address lookup is the exception: its id is bound to the address our TUN
    // asked for (80 bits of it), so a relay cannot make one up; the handshake then checks admission.
    const asked = peek !== undefined && this.addressLookups.has(peek.id.slice(0, 20));
    const members = peek && peek.id !== from && !asked ? this.opts.members : undefined;
    if (members && !budgeted) {
      const v = members.vet(peek!.id, certs);
      if (typeof v === "string") {
        this.opts.stats.recordsRefused++;
        return this.opts.log("debug", `record of ${peek!.id} from ${from} refused: ${v}`);
      }
    }
    // The signature costs ~3.7 ms: within the link's and the origin's budget (a record re-issued with a
    // junk signature would otherwise cost one check each).
    if (peek && this.opts.checks && !budgeted) {
      if (peek.id === from && peek.relay && !this.isRelay(from)) {
        const now = this.opts.now();
        if (this.relayChecking.size >= HELD_LINKS) for (const [id, at] of this.relayChecking) if (now - at > HELD_MS) this.relayChecking.delete(id);
        if (this.relayChecking.size < HELD_LINKS || this.relayChecking.has(from)) this.relayChecking.set(from, now);
      }
      return void this.opts.checks.run(from, peek.id, `record ${peek.id}`, () => this.checkSignature(from, b, certs));
    }
    const admitted = members ? members.screen(peek!.id, certs) : true;
    if (admitted !== true) {
      this.opts.stats.recordsRefused++;
      return this.opts.log("debug", `record of ${peek!.id} from ${from} refused: ${admitted}`);
    }
    const r = decodeRecord(b, this.opts.crypto, this.opts.now(), signatureChecked);
    if (typeof r === "string") {
      this.opts.stats.recordsRefused++;
      this.opts.log("debug", `record from ${from} refused: ${r}`);
      return;
    }
    if (r.id === this.opts.self) return;
    if (!this.opts.relayEnabled && r.relay && !this.records.has(r.id) && this.relayRecordCount() >= MAX_EDGE_RELAY_RECORDS) return;
    this.opts.stats.recordsAccepted++;
    const fresh = !this.records.has(r.id);
    if (fresh && this.records.size >= MAX_RECORDS) this.evictOne();
    this.records.set(r.id, r);
    this.changed = true;
    if (fresh && r.id !== from) this.learnedVia.set(r.id, from);
    if (r.relay) this.adjacency = undefined;
    if (fresh && r.relay) this.opts.log("debug", `learned relay ${r.id}`);
    // A neighbour we linked to before knowing it relays: now it gets the edges' records linked() kept back
    // (else it has no route to our edges until they republish, minutes later).
    if (fresh && r.relay && this.opts.relayEnabled && this.opts.health.get(r.id) && !this.announced.has(r.id))
      for (const x of this.records.values()) if (!x.relay && x.id !== r.id) this.pass(r.id, x);
    // What it passed on while its own record was being checked: looked at now, as if it came just now.
    if (r.id === from) this.relayChecking.delete(from);
    const held = r.relay && r.id === from ? this.held.get(r.id) : undefined;
    if (held) {
      this.held.delete(r.id);
      if (this.opts.now() - held.at <= HELD_MS) for (const x of held.records) this.onRecord(r.id, x.b, false, x.certs);
    }
    this.opts.onRecord?.(r);
    if (!this.opts.relayEnabled) return;
    if (this.misses.size) this.answerMisses(r, from);
    for (const peer of this.opts.health.peers()) if (peer !== from && peer !== r.id && (r.relay || this.isRelay(peer))) this.pass(peer, r);
  }

  /**
   * Hold a record `from` passed on while we do not know it relays, when its own record saying it does
   * is having its signature checked (sent first on the link; the check runs asynchronously): bounded
   * per neighbour and in all, a copy of the bytes only, nothing checked. Whether it was held.
   */
  private hold(from: NodeId, b: Uint8Array, certs: string[]): boolean {
    const now = this.opts.now(), since = this.relayChecking.get(from);
    if (since === undefined || now - since > HELD_MS) return (this.relayChecking.delete(from), false);
    if (!this.opts.health.get(from)) return false; // only from a neighbour linked to us
    let h = this.held.get(from);
    if (h && now - h.at > HELD_MS) (this.held.delete(from), (h = undefined));
    if (!h) {
      if (this.held.size >= HELD_LINKS) {
        for (const [id, x] of this.held) if (now - x.at > HELD_MS) this.held.delete(id);
        if (this.held.size >= HELD_LINKS) return false;
      }
      this.held.set(from, (h = { at: now, records: [] }));
    }
    if (h.records.length >= HELD_PER_LINK) return false;
    h.records.push({ b: b.slice(), certs });
    return true;
  }

  /**
   * A record's budgeted signature check: in the runtime, asynchronously, where the crypto can
   * (RecordCrypto.verifyAsync, ~0.14 ms where noble takes ~3.7: a relay's members renew their records
   * every few minutes), then onRecord again, which looks at everything else afresh (a newer record may
   * have come meanwhile).
   */
  private checkSignature(from: NodeId, frame: Uint8Array, certs: string[]): void {
    if (!this.opts.crypto.verifyAsync) return this.onRecord(from, frame, true, certs);
    // Our own copy: the bytes checked are the bytes taken, whatever happens to the frame's buffer meanwhile.
    const b = frame.slice();
    const signed = recordSignature(b);
    if (!signed) return this.onRecord(from, b, true, certs);
    void this.opts.crypto.verifyAsync!(signed.id, signed.pub, signed.body, signed.sig).then((ok) => {
      if (ok) return this.onRecord(from, b, true, certs, true);
      this.opts.stats.recordsRefused++;
      this.opts.log("debug", `record from ${from} refused: record of ${signed.id}: bad signature`);
    });
  }

  /** Make room: drop the record that expires first, an edge's before a relay's. */
  private evictOne(): void {
    let victim: DiscoveryRecord | undefined;
    for (const r of this.records.values()) if (!victim || (victim.relay && !r.relay) || (victim.relay === r.relay && r.expires < victim.expires)) victim = r;
    if (victim) this.forgetRecord(victim.id);
  }

  private forgetRecord(id: NodeId): void {
    this.records.delete(id);
    this.learnedVia.delete(id);
    this.adjacency = undefined;
    this.changed = true;
  }

  private relayRecordCount(): number {
    let n = 0;
    for (const r of this.records.values()) if (r.relay) n++;
    return n;
  }

  private byAddressBits(bits: Uint8Array): DiscoveryRecord | undefined {
    const prefix = Buffer.from(bits).toString("hex");
    for (const r of this.records.values()) if (!r.relay && r.id.startsWith(prefix)) return r;
    return undefined;
  }

  /** A neighbour asks for a record (HOP_LOOKUP): by node id, or by the 10 node-id bytes of an address. */
  answerLookup(peer: NodeId, body: Uint8Array): void {
    const r = body.length === 10 ? this.byAddressBits(body) : this.records.get(readId(body) ?? ("" as NodeId));
    if (r) return this.pass(peer, r);
    this.opts.sendHop(peer, HOP_MISS, body);
    if (!this.opts.relayEnabled) return;
    const key = body.length === 10 ? Buffer.from(body).toString("hex") : readId(body);
    if (!key) return;
    const m = this.misses.get(key);
    if (m) {
      if (m.askers.size < MAX_MISS_ASKERS) m.askers.add(peer);
    } else if (this.misses.size < MAX_MISSES) this.misses.set(key, { at: this.opts.now(), askers: new Set([peer]) });
  }

  /** A relay got a record some neighbours asked for and missed: it goes to them now. */
  private answerMisses(r: DiscoveryRecord, from: NodeId): void {
    for (const key of [r.id, r.id.slice(0, 20)]) {
      const m = this.misses.get(key);
      if (!m) continue;
      this.misses.delete(key);
      for (const asker of m.askers) if (asker !== from && asker !== r.id) this.pass(asker, r);
    }
  }

  /** Ask every live relay we link to for a record (the caller spaces the asks); false when there is none to ask. */
  ask(body: Uint8Array): boolean {
    let asked = false;
    for (const id of this.opts.health.peers()) if (this.isRelay(id) && this.opts.health.alive(id)) (this.opts.sendHop(id, HOP_LOOKUP, body), (asked = true));
    return asked;
  }

  /**
   * Ask our relays for the record of the node whose id starts with these 10 bytes (the node-id bits of
   * an overlay IPv6 address), at most once a second per address.
   */
  lookupAddress(bits: Uint8Array): void {
    const key = Buffer.from(bits).toString("hex");
    const have = this.byAddressBits(bits);
    if (have) return this.opts.onRecord?.(have);
    const now = this.opts.now();
    if (now - (this.addressLookups.get(key) ?? -Infinity) < LOOKUP_EVERY_MS) return;
    // Spaced only once asked: with no relay linked yet (a node just up), the next packet asks again.
    if (this.ask(bits)) this.addressLookups.set(key, now);
  }

  /** Ask our relays which member holds an address or name (`query` is the node's), at most once a second per query. */
  lookupMember(query: Uint8Array): void {
    const key = "m" + Buffer.from(query).toString("hex");
    const now = this.opts.now();
    if (now - (this.addressLookups.get(key) ?? -Infinity) < LOOKUP_EVERY_MS) return;
    let asked = false;
    for (const id of this.opts.health.peers()) if (this.isRelay(id) && this.opts.health.alive(id)) (this.opts.sendHop(id, HOP_MEMBER_LOOKUP, query), (asked = true));
    if (asked) this.addressLookups.set(key, now);
  }

  /**
   * A relay passes a member lookup it cannot answer to the other relays it links to (not `except`, the
   * asker); the number asked. Relays link to every relay they know, so one hop of this reaches them all.
   */
  forwardMemberLookup(query: Uint8Array, except: NodeId): number {
    let n = 0;
    for (const id of this.opts.health.peers()) if (id !== except && this.isRelay(id) && this.opts.health.alive(id)) (this.opts.sendHop(id, HOP_MEMBER_LOOKUP, query), n++);
    return n;
  }

  /** Hand a member lookup's answer to the neighbour that asked us for it. */
  sendMemberAnswer(to: NodeId, answer: Uint8Array): void {
    if (this.opts.health.get(to)) this.opts.sendHop(to, HOP_MEMBER, answer);
  }

  /** A neighbour's member lookup (HOP_MEMBER_LOOKUP): the node's answer, if any, goes back (HOP_MEMBER). */
  answerMember(peer: NodeId, query: Uint8Array): void {
    const answer = this.opts.memberLookup?.(peer, query);
    if (answer) this.opts.sendHop(peer, HOP_MEMBER, answer);
  }

  /** Sign and send our record when what it says changed (or it is getting old). */
  publish(now: number): void {
    if (now - this.publishedAt < PUBLISH_MIN_MS) return;
    // The walk over every link once a PUBLISH_MIN_MS, or at once after a change (a relay ticks ten times a second).
    if (!this.changed && now - this.walkedAt < PUBLISH_MIN_MS) return;
    this.changed = false;
    this.walkedAt = now;
    const h = this.opts.health;
    const relays = [...h.peers()].filter((id) => this.isRelay(id) && h.alive(id)).sort().slice(0, MAX_RECORD_RELAYS);
    const key = relays.join();
    const old = !this.own || now - this.own.issued > RECORD_LIFETIME_MS / 3;
    const relaying = this.opts.relayEnabled;
    const load = this.opts.load(now);
    const loadMoved = relaying && Math.abs(load - (this.own?.load ?? 0)) >= 10 && now - this.publishedAt >= LOAD_PUBLISH_MIN_MS;
    if (key === this.ownRelays && !old && !loadMoved) return;
    if (relays.length === 0 && !relaying) return;
    this.ownRelays = key;
    this.publishedAt = now;
    const issued = Math.max(Math.floor(now), (this.own?.issued ?? 0) + 1);
    const fields = { id: this.opts.self, relay: relaying, load: relaying ? load : 0, relays, hints: this.opts.hints?.() ?? [], issued, expires: issued + RECORD_LIFETIME_MS };
    const bytes = encodeRecord(fields, this.opts.crypto);
    this.own = { ...fields, pub: this.opts.crypto.publicBytes, bytes };
    for (const peer of h.peers()) if (relaying || this.isRelay(peer)) this.opts.sendHop(peer, HOP_RECORD, bytes);
  }

  /**
   * Keep links to our relays. A relay links to every relay it knows. An edge keeps `relaysWanted` live
   * relay links; while it has fewer it tries that many more, the least recently tried first (seeds' relays
   * first among equals) (the link port's backoff spaces the retries).
   */
  attachRelays(now: number = this.opts.now()): void {
    // A relay links to every relay it knows: a look once a second will do (the walk covers every record).
    if (this.opts.relayEnabled && now - this.attachedAt < PUBLISH_MIN_MS) return;
    this.attachedAt = now;
    const known = new Set<NodeId>(this.announced);
    for (const r of this.records.values()) if (r.relay) known.add(r.id);
    known.delete(this.opts.self);
    const alive = (id: NodeId) => this.opts.health.alive(id);
    if (this.opts.relayEnabled) {
      for (const r of known) if (!alive(r)) this.opts.links.connect(r);
      return;
    }
    const want = this.opts.relaysWanted ?? 2;
    let live = 0;
    for (const r of known) if (alive(r)) live++;
    if (live >= want) return;
    const tries = [...known]
      .filter((r) => !alive(r))
      .sort((a, b) => (this.tried.get(a) ?? 0) - (this.tried.get(b) ?? 0) || Number(this.announced.has(b)) - Number(this.announced.has(a)));
    for (const r of tries.slice(0, want - live)) {
      this.tried.set(r, now);
      this.opts.links.connect(r);
    }
  }

  /** An edge forgets a non-relay's record once it stops talking to it. */
  forget(id: NodeId): void {
    const r = this.records.get(id);
    if (r && !r.relay && !this.opts.relayEnabled) this.forgetRecord(id);
  }

  /** Drop expired records and stale address lookups. */
  expire(now: number): void {
    if (now - this.expiredAt < PUBLISH_MIN_MS) return; // once a second: a relay holds every member's record
    this.expiredAt = now;
    for (const [k, at] of this.addressLookups) if (now - at > 10 * LOOKUP_EVERY_MS) this.addressLookups.delete(k);
    for (const [k, m] of this.misses) if (now - m.at > MISS_MS) this.misses.delete(k);
    for (const [id, r] of this.records)
      if (r.expires <= now) this.forgetRecord(id);
  }
}
