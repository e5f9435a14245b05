// What werift keeps per peer connection that an open link does not need (issue 18: a relay holds a
// thousand idle links, and each werift connection was ~100 KB of JavaScript heap).
//
// werift's Event (its event emitter; a connection has ~55 of them: ICE, DTLS, SCTP, channels, the
// peer connection's own) defines its ten methods as arrow-function class fields, so each Event carries
// ten closures and their scope (~360 bytes, ~20 KB per connection) where a prototype would do. Class
// fields cannot be changed from outside the module, so once a link is open slimEvents() walks its werift
// objects and points each Event's method fields at one shared function apiece, with the same bodies
// working on `this`. werift calls these only as methods (`x.onData.execute(...)`, never detached), and
// a closure taken before the swap still works on the same Event (it only stays alive). An Event's
// subscribers, state and `onerror` (when set to something of werift's or ours) are left as they are.
//
// Patches on werift's prototypes (trimWerift(), once per process): no SRTP contexts for links that
// carry no media, and the DTLS certificate and key parsed once, not per connection.
import { CipherContext, Event, RTCDtlsTransport } from "werift";

interface Item {
  execute: (...args: unknown[]) => unknown;
  id: number;
  complete?: () => void;
  error?: (e: unknown) => void;
}
interface Ev {
  event: { stack: Item[]; promiseStack: Item[]; eventId: number };
  ended: boolean;
  onended?: () => void;
  onerror: (e: unknown) => void;
  subscribe(execute: Item["execute"], complete?: Item["complete"], error?: Item["error"]): { unSubscribe: () => void; disposer: (d: { push(f: () => void): void }) => void };
  once(execute: Item["execute"], complete?: Item["complete"], error?: Item["error"]): void;
  allUnsubscribe(): void;
}

/** The subscriber lists of every slimmed Event that has none (most of them): made on the first subscribe. */
const NONE: Ev["event"] = Object.freeze({ stack: Object.freeze([]) as unknown as Item[], promiseStack: Object.freeze([]) as unknown as Item[], eventId: 0 });
/** The Event's own subscriber lists, made now if it shares NONE. */
function lists(ev: Ev): Ev["event"] {
  if (ev.event === NONE) ev.event = { stack: [], promiseStack: [], eventId: 0 };
  return ev.event;
}
/** An unSubscribe for subscriber `id` (as werift's, which filters the plain stack in either case). */
function unsubscriber(ev: Ev, id: number): () => void {
  return () => {
    if (ev.event !== NONE) ev.event.stack = ev.event.stack.filter((item) => item.id !== id && item);
  };
}

/** werift's Event methods, as methods: same behaviour (event.ts in werift's common package). */
const shared: Record<string, (this: Ev, ...args: any[]) => unknown> = {
  onerror() {},
  execute(this: Ev, ...args: unknown[]) {
    if (this.ended) return;
    for (const item of this.event.stack) item.execute(...args);
    // werift starts this async loop on every call; with nothing queued it does nothing.
    if (this.event.promiseStack.length === 0) return;
    (async () => {
      for (const item of this.event.promiseStack) await item.execute(...args);
    })().catch((e) => this.onerror(e));
  },
  complete(this: Ev) {
    if (this.ended) return;
    for (const item of this.event.stack) item.complete?.();
    this.allUnsubscribe();
    this.ended = true;
    if (this.onended) {
      this.onended();
      this.onended = undefined;
    }
  },
  error(this: Ev, e: unknown) {
    if (this.ended) return;
    for (const item of this.event.stack) item.error?.(e);
    this.allUnsubscribe();
  },
  allUnsubscribe(this: Ev) {
    if (this.ended) return;
    this.event = NONE;
  },
  subscribe(this: Ev, execute: Item["execute"], complete?: Item["complete"], error?: Item["error"]) {
    const l = lists(this);
    const id = l.eventId++;
    l.stack.push({ execute, id, complete, error });
    const unSubscribe = unsubscriber(this, id);
    return { unSubscribe, disposer: (d: { push(f: () => void): void }) => d.push(unSubscribe) };
  },
  queuingSubscribe(this: Ev, execute: Item["execute"], complete?: Item["complete"], error?: Item["error"]) {
    if (this.ended) throw new Error("event completed");
    const l = lists(this);
    const id = l.eventId++;
    l.promiseStack.push({ execute, id, complete, error });
    const unSubscribe = unsubscriber(this, id);
    return { unSubscribe, disposer: (d: { push(f: () => void): void }) => d.push(unSubscribe) };
  },
  once(this: Ev, execute: Item["execute"], complete?: Item["complete"], error?: Item["error"]) {
    const off = this.subscribe((...args) => {
      off.unSubscribe();
      execute(...args);
    }, complete, error);
  },
  watch(this: Ev, cb: (...args: unknown[]) => unknown, timeLimit?: number) {
    return new Promise((resolve, reject) => {
      const timeout = timeLimit && setTimeout(() => reject("Event watch timeout"), timeLimit);
      const { unSubscribe } = this.subscribe((...args) => {
        if (cb(...args)) {
          if (timeout) clearTimeout(timeout);
          unSubscribe();
          resolve(args);
        }
      });
    });
  },
  asPromise(this: Ev, timeLimit?: number) {
    return new Promise((resolve, reject) => {
      const timeout = timeLimit && setTimeout(() => reject("Event asPromise timeout"), timeLimit);
      const stop = () => timeout && clearTimeout(timeout);
      this.once(
        (...args) => (stop(), resolve(args)),
        () => (stop(), resolve([])),
        (err) => (stop(), reject(err)),
      );
    });
  },
};
const METHODS = Object.keys(shared);
/** The source of werift's default onerror (a no-op): only that one is swapped, never one set since. */
const DEFAULT_ONERROR = String((new Event() as unknown as Ev).onerror);

/** Point one Event's method fields at the shared methods (once; an Event made later keeps its own). */
export function slimEvent(ev: object): boolean {
  const e = ev as unknown as Record<string, unknown>;
  if (e.execute === shared.execute) return false;
  for (const k of METHODS) {
    const own = e[k];
    if (typeof own !== "function" || !Object.hasOwn(e, k)) continue;
    if (k === "onerror" && String(own) !== DEFAULT_ONERROR) continue;
    e[k] = shared[k];
  }
  const l = (e as unknown as Ev).event;
  if (l.stack.length === 0 && l.promiseStack.length === 0 && l.eventId === 0) (e as unknown as Ev).event = NONE;
  return true;
}

/** Objects a walk leaves alone: bytes, sockets and timers hold no werift Events. */
const opaque = (v: object) => ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof Promise || v instanceof Date || v instanceof RegExp;

/**
 * Slim every werift Event reachable from `roots` through object fields, arrays and Map/Set values
 * (at most `limit` objects visited). Returns how many were slimmed.
 */
export function slimEvents(roots: object[], limit = 20_000): number {
  const seen = new Set<object>();
  const queue: object[] = [...roots];
  let slimmed = 0;
  while (queue.length > 0 && seen.size < limit) {
    const o = queue.pop()!;
    if (seen.has(o)) continue;
    seen.add(o);
    if (o instanceof Event) {
      if (slimEvent(o)) slimmed++;
      continue; // its subscribers are other objects' closures: nothing to walk
    }
    const values = o instanceof Map || o instanceof Set ? o.values() : Object.values(o);
    for (const v of values) if (v && typeof v === "object" && !seen.has(v) && !opaque(v)) queue.push(v);
  }
  return slimmed;
}

let trimmed = false;
/**
 * Once per process. (1) werift starts SRTP on every DTLS transport whose handshake offered it (always:
 * its profile list is fixed): two sessions with four AES-GCM contexts (~6 KB) and a subscriber that looks
 * at every datagram the ICE connection receives. Our links carry data channels only, never RTP: no
 * SRTP (RTP-looking datagrams are then dropped unread, as any other stranger's). (2) Each DTLS cipher
 * context parses the certificate and private key PEM it is given (~1.5 KB of ASN.1 per connection, and
 * the parse itself at every set-up); the process presents one certificate (./dtlscert.ts): parsed once,
 * shared (both are only read: the key signs, the certificate is sent).
 */
export function trimWerift(): void {
  if (trimmed) return;
  trimmed = true;
  const dtls = RTCDtlsTransport.prototype as unknown as { startSrtp(): void; srtpStarted: boolean };
  dtls.startSrtp = function (this: { srtpStarted: boolean }) {
    this.srtpStarted = true;
  };
  type Cipher = { localCert: unknown; localPrivateKey: unknown; signatureHashAlgorithm: unknown };
  const cipher = CipherContext.prototype as unknown as { parseX509(this: Cipher, cert: string, key: string, hash: unknown): void };
  const parse = cipher.parseX509;
  const parsed = new Map<string, { localCert: unknown; localPrivateKey: unknown }>();
  cipher.parseX509 = function (cert, key, hash) {
    const id = `${cert}\n${key}`;
    let p = parsed.get(id);
    if (!p) {
      parse.call(this, cert, key, hash);
      p = { localCert: this.localCert, localPrivateKey: this.localPrivateKey };
      if (parsed.size < 4) parsed.set(id, p); // one certificate a process; a bound all the same
    }
    this.localCert = p.localCert;
    this.localPrivateKey = p.localPrivateKey;
    this.signatureHashAlgorithm = hash;
  };
}
