// A node's connection to its seeds: registers (proving its node id), sends and receives signal envelopes,
// and reconnects with backoff. A dead or hostile seed costs reachability, never a crash.
import { encodePublicIdentity, isNodeId, sign, type Identity, type NodeId } from "../identity/identity.ts";
import { REGISTER_CONTEXT, type SignalEnvelope } from "./messages.ts";

import type { Log } from "../log.ts";

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;

class SeedConnection {
  ws?: WebSocket;
  registered = false;
  private backoff = BACKOFF_MIN_MS;
  private stopped = false;
  private timer?: ReturnType<typeof setTimeout>;

  constructor(
    readonly url: string,
    private readonly identity: Identity,
    private readonly onMessage: (msg: unknown) => void,
    private readonly onRegistered: (relay?: NodeId) => void,
    private readonly log: Log,
  ) {}

  start(): void {
    if (this.stopped) return;
    const wsUrl = this.url.replace(/^http/, "ws") + "/v1/signal";
    let ws: WebSocket;
    try {
      ws = new WebSocket(wsUrl);
    } catch (e) {
      this.log("warn", `seed ${this.url}: ${(e as Error).message}`);
      return this.retry();
    }
    this.ws = ws;
    ws.onmessage = (e) => {
      try {
        const m = JSON.parse(String(e.data));
        if (m?.t === "challenge" && typeof m.nonce === "string") {
          const sig = sign(this.identity, REGISTER_CONTEXT, Buffer.from(m.nonce, "base64"));
          ws.send(JSON.stringify({ t: "register", pub: Buffer.from(encodePublicIdentity(this.identity.public)).toString("base64"), sig: Buffer.from(sig).toString("base64") }));
        } else if (m?.t === "registered") {
          this.registered = true;
          this.backoff = BACKOFF_MIN_MS;
          this.log("info", `registered with seed ${this.url}`);
          this.onRegistered(typeof m.relay === "string" && isNodeId(m.relay) ? m.relay : undefined);
        } else if (m?.t === "msg") {
          this.onMessage(m.msg);
        } else if (m?.t === "undeliverable") {
          this.log("debug", `seed ${this.url}: ${m.to} is not registered there`);
        }
      } catch (err) {
        this.log("debug", `seed ${this.url}: bad frame: ${(err as Error).message}`);
      }
    };
    ws.onclose = () => {
      if (this.registered) this.log("info", `lost seed ${this.url}; reconnecting`);
      this.registered = false;
      this.retry();
    };
    ws.onerror = () => {};
  }

  private retry(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.start();
    }, this.backoff);
    this.backoff = Math.min(BACKOFF_MAX_MS, this.backoff * 2);
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
  private registeredCbs: ((relay?: NodeId) => void)[] = [];
  /** The seed this node runs itself, reached in-process (no registration with itself needed). */
  private local?: (to: NodeId, envelope: SignalEnvelope) => boolean;

  constructor(identity: Identity, seeds: string[], onMessage: (msg: unknown) => void, log: Log) {
    this.conns = seeds.map((url) => new SeedConnection(url, identity, onMessage, (relay) => this.registeredCbs.forEach((f) => f(relay)), log));
  }

  start(): void {
    for (const c of this.conns) c.start();
  }

  /** Called each time a seed accepts our registration (new seed or reconnect), with the seed's relay id. */
  onRegistered(cb: (relay?: NodeId) => void): void {
    this.registeredCbs.push(cb);
  }

  /** Signal through the seed this node runs (in-process); counts as registered from now on. */
  attachLocal(send: (to: NodeId, envelope: SignalEnvelope) => boolean): void {
    this.local = send;
    this.registeredCbs.forEach((f) => f());
  }

  get registered(): boolean {
    return this.local !== undefined || this.conns.some((c) => c.registered);
  }

  /** The seeds that hold our registration now (alive, as far as we can tell). */
  registeredUrls(): string[] {
    return this.conns.filter((c) => c.registered).map((c) => c.url);
  }

  /** Send through every seed we are registered with; false if none took it. */
  send(to: NodeId, envelope: SignalEnvelope): boolean {
    const frame = JSON.stringify({ t: "send", to, msg: envelope });
    let sent = this.local?.(to, envelope) ?? false;
    for (const c of this.conns) sent = c.send(frame) || sent;
    return sent;
  }

  stop(): void {
    for (const c of this.conns) c.stop();
  }
}
