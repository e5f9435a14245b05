// A node's connection to its seeds: registers (proving its node id, showing its certificates), sends
// and receives signal envelopes, and reconnects with backoff. https:// seeds are checked as ./tls.ts
// says; a seed that fails the check is logged with the reason and retried, the others carry on. When
// the seed relays and grants it, the same socket carries this node's sealed packets (a tether, see
// src/tether/wslink.ts). A dead or hostile seed costs reachability, never a crash.
import { signAsync } from "../identity/fastsig.ts";
import { decodePublicIdentity, encodePublicIdentity, isNodeId, type Identity, type NodeId, type PublicIdentity } from "../identity/identity.ts";
import { REGISTER_CONTEXT, type SignalEnvelope } from "./messages.ts";
import { seedEndpoint, seedTlsOptions } from "./tls.ts";

import type { Log } from "../log.ts";

/** Bytes queued on a seed socket before tether packets are dropped (control frames still go). */
const TETHER_QUEUE_BYTES = 256 * 1024;
const TETHER_CONTROL_QUEUE_BYTES = 4 * 1024 * 1024;

/** What a seed connection offers a tether: its socket, while it stays registered. */
export interface TetherSocket {
  readonly seed: string;
  send(frame: Uint8Array, control: boolean): boolean;
  onData(cb: (frame: Uint8Array) => void): void;
  onClose(cb: () => void): void;
}

export interface SignalClientOptions {
  /** [network] ca: a PEM bundle trusted beside the system's CAs for https:// seeds. */
  ca?: string | null;
  /** Our membership certificates (base64), shown at registration. */
  proofs?(): string[];
  /** Ask seeds that relay to carry our packets on the signalling socket. */
  tether?: boolean;
}

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;

class SeedConnection {
  ws?: WebSocket;
  registered = false;
  private backoff = BACKOFF_MIN_MS;
  private stopped = false;
  private timer?: ReturnType<typeof setTimeout>;
  private tether?: { data: ((f: Uint8Array) => void)[]; close: (() => void)[] };
  /** The last failure, logged once until it changes (a seed down for an hour is one line, not 400). */
  private lastError = "";
  /** The relay the seed announced at registration (our own id: the seed is this node). */
  relay?: NodeId;

  constructor(
    readonly url: string,
    private readonly identity: Identity,
    private readonly onMessage: (msg: unknown) => void,
    private readonly onRegistered: (relay?: NodeId, tether?: { socket: TetherSocket; relay: PublicIdentity }) => void,
    private readonly log: Log,
    private readonly opts: SignalClientOptions,
    /** Whether this node serves its own seed in-process (SignalClient.attachLocal). */
    private readonly servesLocally: () => boolean = () => false,
  ) {}

  start(): void {
    if (this.stopped) return;
    void this.open().catch((e) => {
      this.fail((e as Error).message);
      this.retry();
    });
  }

  private fail(why: string): void {
    const msg = `seed ${seedEndpoint(this.url).base}: ${why}`;
    if (msg === this.lastError) return this.log("debug", msg);
    this.lastError = msg;
    this.log("warn", `${msg}; trying it again later (other seeds carry on)`);
  }

  private async open(): Promise<void> {
    const tls = await seedTlsOptions(this.url, this.opts.ca);
    if (this.stopped) return;
    const wsUrl = seedEndpoint(this.url).base.replace(/^http/, "ws") + "/v1/signal";
    const ws = new (WebSocket as unknown as new (url: string, o?: object) => WebSocket)(wsUrl, tls ? { tls } : undefined);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onmessage = (e) => {
      if (typeof e.data !== "string") {
        const f = new Uint8Array(e.data as ArrayBuffer);
        for (const cb of this.tether?.data ?? []) cb(f);
        return;
      }
      try {
        const m = JSON.parse(String(e.data));
        if (m?.t === "challenge" && typeof m.nonce === "string") {
          // Signed in the runtime (../identity/fastsig.ts: ~0.3 ms where noble blocks ~13 ms).
          void signAsync(this.identity, REGISTER_CONTEXT, Buffer.from(m.nonce, "base64")).then((sig) => {
            if (ws.readyState !== WebSocket.OPEN) return;
            ws.send(JSON.stringify({
              t: "register", pub: Buffer.from(encodePublicIdentity(this.identity.public)).toString("base64"), sig: Buffer.from(sig).toString("base64"),
              certs: this.opts.proofs?.() ?? [], ...(this.opts.tether ? { tether: true } : {}),
            }));
          });
        } else if (m?.t === "registered") {
          this.registered = true;
          this.backoff = BACKOFF_MIN_MS;
          this.lastError = "";
          const relay = typeof m.relay === "string" && isNodeId(m.relay) ? (m.relay as NodeId) : undefined;
          this.relay = relay;
          if (relay === this.identity.public.id && this.servesLocally()) return this.dropOwnSeed();
          let tether: { socket: TetherSocket; relay: PublicIdentity } | undefined;
          if (m.tether === true && relay && typeof m.relayPub === "string") {
            try {
              const pub = decodePublicIdentity(Buffer.from(m.relayPub, "base64"));
              if (pub.id === relay) tether = { socket: this.tetherSocket(ws), relay: pub };
            } catch {}
          }
          this.log("info", `registered with seed ${seedEndpoint(this.url).base}${tether ? " (it carries our packets when UDP fails)" : ""}`);
          this.onRegistered(relay, tether);
        } else if (m?.t === "msg") {
          this.onMessage(m.msg);
        } else if (m?.t === "present" && typeof m.id === "string") {
          const waiting = this.asked.get(m.id);
          this.asked.delete(m.id);
          for (const r of waiting ?? []) r(m.registered === true);
        } else if (m?.t === "undeliverable") {
          this.log("debug", `seed ${this.url}: ${m.to} is not registered there`);
        }
      } catch (err) {
        this.log("debug", `seed ${this.url}: bad frame: ${(err as Error).message}`);
      }
    };
    ws.onclose = (e) => {
      if (this.registered) this.log("info", `lost seed ${seedEndpoint(this.url).base}; reconnecting`);
      else if (e.code === 1008 && e.reason) this.fail(`refused us: ${e.reason}`);
      this.registered = false;
      const t = this.tether;
      this.tether = undefined;
      for (const cb of t?.close ?? []) cb();
      if (this.ws === ws) this.retry();
    };
    ws.onerror = (e) => {
      const why = (e as unknown as { message?: string }).message;
      if (why) this.fail(why.replace(/^WebSocket connection to '[^']*' failed: /, ""));
    };
  }

  private tetherSocket(ws: WebSocket): TetherSocket {
    const t = (this.tether = { data: [] as ((f: Uint8Array) => void)[], close: [] as (() => void)[] });
    return {
      seed: this.url,
      send: (frame, control) => {
        if (this.tether !== t || ws.readyState !== WebSocket.OPEN) return false;
        if (ws.bufferedAmount > (control ? TETHER_CONTROL_QUEUE_BYTES : TETHER_QUEUE_BYTES)) return false;
        ws.send(frame);
        return true;
      },
      onData: (cb) => void t.data.push(cb),
      onClose: (cb) => void t.close.push(cb),
    };
  }

  private retry(): void {
    if (this.stopped || this.timer) return;
    // Jittered: members that lost their seed together (it restarted) do not all come back at once.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.start();
    }, this.backoff * (0.5 + Math.random()));
    this.backoff = Math.min(BACKOFF_MAX_MS, this.backoff * 2);
  }

  /** Answers awaited to "present" questions, by node id. */
  private readonly asked = new Map<string, ((yes: boolean) => void)[]>();

  /** Whether node `id` is registered with this seed (false when we are not, or it does not answer). */
  present(id: NodeId, timeoutMs: number): Promise<boolean> {
    if (this.asked.size >= 64 || !this.send(JSON.stringify({ t: "present", id }))) return Promise.resolve(false);
    return new Promise((resolve) => {
      const list = this.asked.get(id) ?? [];
      this.asked.set(id, list);
      const done = (yes: boolean) => {
        clearTimeout(timer);
        resolve(yes);
      };
      list.push(done);
      const timer = setTimeout(() => {
        const l = this.asked.get(id);
        if (l) {
          l.splice(l.indexOf(done), 1);
          if (l.length === 0) this.asked.delete(id);
        }
        resolve(false);
      }, timeoutMs);
    });
  }

  /**
   * The seed is this node, whose signalling is served in-process: a socket to ourselves would carry
   * every signal a second time (each member got it twice), and a relay answering hundreds of members at
   * once went over its own seed's message rate, was dropped and re-registered, and every registration
   * re-signed an attempt to every peer it wanted (a seconds-long stall, again every few seconds).
   */
  dropOwnSeed(): void {
    this.registered = false;
    this.log("info", `seed ${seedEndpoint(this.url).base} is this node: its signalling stays in-process`);
    this.stop();
  }

  send(frame: string): boolean {
    if (!this.registered || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(frame);
    return true;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    try {
      this.ws?.close();
    } catch {}
  }
}

export class SignalClient {
  private conns: SeedConnection[];
  private registeredCbs: ((relay?: NodeId, tether?: { socket: TetherSocket; relay: PublicIdentity }) => void)[] = [];
  /** The seed this node runs itself, reached in-process (no registration with itself needed). */
  private local?: (to: NodeId, envelope: SignalEnvelope) => boolean;
  private localRegistered?: (id: NodeId) => boolean;
  private readonly self: NodeId;

  constructor(identity: Identity, seeds: string[], onMessage: (msg: unknown) => void, log: Log, opts: SignalClientOptions = {}) {
    this.conns = seeds.map((url) => new SeedConnection(url, identity, onMessage, (relay, tether) => this.registeredCbs.forEach((f) => f(relay, tether)), log, opts, () => this.local !== undefined));
    this.self = identity.public.id;
  }

  start(): void {
    for (const c of this.conns) c.start();
  }

  /** Called each time a seed accepts our registration (new seed or reconnect), with the seed's relay id and the tether it grants. */
  onRegistered(cb: (relay?: NodeId, tether?: { socket: TetherSocket; relay: PublicIdentity }) => void): void {
    this.registeredCbs.push(cb);
  }

  /** Signal through the seed this node runs (in-process); counts as registered from now on. */
  attachLocal(send: (to: NodeId, envelope: SignalEnvelope) => boolean, registered?: (id: NodeId) => boolean): void {
    this.local = send;
    this.localRegistered = registered;
    for (const c of this.conns) if (c.registered && c.relay === this.self) c.dropOwnSeed();
    this.registeredCbs.forEach((f) => f());
  }

  get registered(): boolean {
    return this.local !== undefined || this.conns.some((c) => c.registered);
  }

  /** The seeds that hold our registration now (alive, as far as we can tell). */
  registeredUrls(): string[] {
    return this.conns.filter((c) => c.registered).map((c) => seedEndpoint(c.url).base);
  }

  /** Send through every seed we are registered with; false if none took it. */
  send(to: NodeId, envelope: SignalEnvelope): boolean {
    const frame = JSON.stringify({ t: "send", to, msg: envelope });
    let sent = this.local?.(to, envelope) ?? false;
    for (const c of this.conns) sent = c.send(frame) || sent;
    return sent;
  }

  /**
   * Whether node `id` is registered with any of our seeds (or the one we run): asked before a link
   * attempt to an id nothing else told us of, so a made-up id costs a question, not a signed offer.
   */
  async present(id: NodeId, timeoutMs: number): Promise<boolean> {
    if (this.localRegistered?.(id)) return true;
    // Just started: our own registration first (a ping right after `trellis up`).
    const end = performance.now() + timeoutMs;
    while (!this.conns.some((c) => c.registered) && performance.now() < end - 50) await Bun.sleep(50);
    timeoutMs = Math.max(1, end - performance.now());
    const asks = this.conns.filter((c) => c.registered).map((c) => c.present(id, timeoutMs));
    if (asks.length === 0) return false;
    return new Promise((resolve) => {
      let left = asks.length;
      for (const a of asks)
        void a.then((yes) => {
          if (yes) resolve(true);
          else if (--left === 0) resolve(false);
        });
    });
  }

  stop(): void {
    for (const c of this.conns) c.stop();
  }
}
