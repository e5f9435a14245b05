// The seed: forwards signed signalling between registered nodes over WebSocket (on Bun.serve, HTTPS
// when given a certificate), carries tethered nodes' sealed packets on the same socket, serves the
// invite store over HTTP (hono), and answers STUN on the same port number over UDP. It holds no keys
// and cannot forge what it forwards.
//
// Protocol flow on /v1/signal (JSON text frames; binary frames only once tethered):
//   seed → node  {t:"challenge", nonce}                  random 32 bytes, base64
//   node → seed  {t:"register", pub, sig, certs?, tether?}
//                                                        public identity; ML-DSA signature over the nonce;
//                                                        membership certificates (base64) for the seed's
//                                                        admission; whether to carry data on this socket
//   seed → node  {t:"registered", id, relay?, tether?, relayPub?}
//                                                        the node id the seed now routes to this socket,
//                                                        the seed's own node id when it also relays (link
//                                                        to it), and whether it carries this node's data
//                                                        (then its public identity, hashing to `relay`)
//   node → seed  {t:"send", to, msg}                     a signed signal envelope for node `to`
//   seed → node  {t:"msg", msg}  /  {t:"undeliverable", to}
//   node → seed  {t:"present", id}                       is node `id` registered here? (what a "send" to it
//   seed → node  {t:"present", id, registered}           would tell, without a signed envelope to make)
//   either way   binary: one tether frame (src/tether/wslink.ts) once "tether" was granted
// Anything else, oversized frames, or a node over its message rate gets the socket closed.
//
// Bounds (src/seed/limits.ts): connections and registration checks per source address, a register
// deadline after which unregistered sockets close (they are also evicted first when the seed is full),
// frames refused by the server above MAX_PAYLOAD before they are buffered, idle sockets closed.
import { Hono } from "hono";
import type { Server, ServerWebSocket } from "bun";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { decodePublicIdentity, isNodeId, type NodeId, type PublicIdentity } from "../identity/identity.ts";
import { verifyAsync } from "../identity/fastsig.ts";
import { MAX_SIGNAL_BYTES, REGISTER_CONTEXT } from "../signal/messages.ts";
import { startStun } from "./stun.ts";
import { enrolRoutes, type InviteScope } from "./enrol.ts";
import { SourceLimits } from "./limits.ts";
import type { TetherPort, TetherSink } from "../tether/wslink.ts";

export { REGISTER_CONTEXT };
const MAX_TEXT = MAX_SIGNAL_BYTES + 1024 + 4 * 8 * 1024;
/** Largest WebSocket message the server reads at all (checked on the frame header, before buffering). */
export const MAX_PAYLOAD = 64 * 1024;
const MAX_CLIENTS = 4096;
const MESSAGES_PER_SECOND = 20;
export const REGISTER_TIMEOUT_MS = 5_000;
/** Seconds without a frame (Bun pings in between) before a socket is closed. */
const IDLE_TIMEOUT_S = 60;
/** Bytes queued towards a tethered node before its packets are dropped (keeps the TCP queue short). */
export const TETHER_QUEUE_BYTES = 256 * 1024;

import type { Log } from "../log.ts";

/**
 * The seed's own node, served in-process: signals addressed to it go to `receive` (it needs no
 * WebSocket registration with itself), and it sends to registered nodes with the seed's deliver().
 */
export interface LocalNode {
  id: NodeId;
  receive(msg: unknown): void;
}

export interface SeedOptions {
  log?: Log;
  /** Our node id when we relay too: registered nodes link to it. */
  relay?: NodeId;
  /** Our public identity (encoded), sent to tethered nodes: the relay their packets ride to. */
  relayPub?: Uint8Array;
  /** Who may register (allow-listed ids, members of the networks we serve); everyone when absent. */
  admit?(remote: PublicIdentity, certs: string[]): true | string;
  /** Which networks' invites the store takes; any when absent. */
  invites?: InviteScope;
  tether?: TetherPort;
  local?: LocalNode;
}

interface Client {
  ws: ServerWebSocket<Client>;
  addr: string;
  nonce: Uint8Array;
  id?: NodeId;
  tokens: number;
  at: number;
  timer?: ReturnType<typeof setTimeout>;
  sink?: TetherSink;
  closed?: boolean;
  /** Its registration's signature is being checked (asynchronously): anything else it sends meanwhile closes it. */
  registering?: boolean;
}

export interface SeedStats {
  clients: number;
  forwarded: number;
  rejected: number;
  refusedConnections: number;
  refusedRegistrations: number;
  evicted: number;
  tethered: number;
}

export interface SeedCore {
  app: Hono<{ Bindings: { addr: string } }>;
  stats: SeedStats;
  limits: SourceLimits;
  fetch(req: Request, server: Server<Client>): Response | Promise<Response> | undefined;
  websocket: Bun.WebSocketHandler<Client>;
  /** Send a signal from the seed's own node to a registered node; false if it is not registered. */
  deliver(to: NodeId, msg: unknown): boolean;
  /** Whether node `id` is registered here now. */
  registered(id: NodeId): boolean;
  close(): void;
}

export function seedCore(opts: SeedOptions = {}): SeedCore {
  const log = opts.log ?? (() => {});
  const byId = new Map<NodeId, Client>();
  /** Sockets without a registration yet, oldest first (evicted first when the seed is full). */
  const unregistered = new Set<Client>();
  const all = new Set<Client>();
  const limits = new SourceLimits();
  const stats: SeedStats = { clients: 0, forwarded: 0, rejected: 0, refusedConnections: 0, refusedRegistrations: 0, evicted: 0, tethered: 0 };
  const app = new Hono<{ Bindings: { addr: string } }>();

  const drop = (c: Client, why: string) => {
    stats.rejected++;
    log("debug", `seed: closing ${c.id ?? `unregistered client ${c.addr}`}: ${why}`);
    try {
      c.ws.close(1008, why.slice(0, 100));
    } catch {}
  };

  app.get("/v1/health", (ctx) => ctx.json({ ok: true, clients: byId.size }));
  app.route("/", enrolRoutes({ scope: opts.invites, costly: (addr) => limits.costly(addr) }));
  // A scanner sees an ordinary web server: anything not ours is a plain 404.
  app.notFound(() => new Response("Not Found\n", { status: 404, headers: { "content-type": "text/plain" } }));
  app.onError((err, ctx) => ctx.json({ error: String(err.message) }, 400));

  const register = async (c: Client, m: { pub?: unknown; sig?: unknown; certs?: unknown; tether?: unknown }) => {
    if (typeof m.pub !== "string" || typeof m.sig !== "string") return drop(c, "expected register");
    const certs = Array.isArray(m.certs) ? m.certs.filter((x): x is string => typeof x === "string").slice(0, 4) : [];
    if (!limits.costly(c.addr)) {
      stats.refusedRegistrations++;
      return drop(c, "too many registrations from this address; retry later");
    }
    const pub = decodePublicIdentity(Buffer.from(m.pub, "base64"));
    // Checked in the runtime (../identity/fastsig.ts: ~0.14 ms where noble takes ~3: a crowd registers at once).
    c.registering = true;
    const good = await verifyAsync(pub, REGISTER_CONTEXT, c.nonce, Buffer.from(m.sig, "base64"));
    c.registering = false;
    if (c.closed) return; // gone while its signature was checked
    if (!good) return drop(c, "bad registration signature");
    const verdict = opts.admit ? opts.admit(pub, certs) : true;
    if (verdict !== true) {
      stats.refusedRegistrations++;
      return drop(c, `not served here: ${verdict}`);
    }
    c.id = pub.id;
    unregistered.delete(c);
    clearTimeout(c.timer);
    const old = byId.get(pub.id);
    if (old && old !== c) drop(old, "replaced by a new registration");
    byId.set(pub.id, c);
    stats.clients = byId.size;
    let tether = false;
    if (m.tether === true && opts.tether && pub.id !== opts.relay) {
      const sink = opts.tether.open(pub, certs, (frame, control) => send(c, frame, control), (why) => drop(c, why));
      if (typeof sink === "string") log("info", `seed: not carrying data for ${pub.id}: ${sink}`);
      else {
        c.sink = sink;
        tether = true;
        stats.tethered++;
      }
    }
    log("info", `seed: node ${pub.id} registered${tether ? " (tethered: its data may ride this socket)" : ""}`);
    const granted = tether && opts.relayPub ? { tether: true, relayPub: Buffer.from(opts.relayPub).toString("base64") } : {};
    c.ws.send(JSON.stringify({ t: "registered", id: pub.id, ...(opts.relay ? { relay: opts.relay } : {}), ...granted }));
  };

  const send = (c: Client, frame: Uint8Array, control: boolean): boolean => {
    if (c.closed || c.ws.getBufferedAmount() > (control ? 4 * TETHER_QUEUE_BYTES : TETHER_QUEUE_BYTES)) return false;
    return c.ws.sendBinary(frame) !== 0;
  };

  const websocket: Bun.WebSocketHandler<Client> = {
    maxPayloadLength: MAX_PAYLOAD,
    idleTimeout: IDLE_TIMEOUT_S,
    backpressureLimit: 4 * 1024 * 1024,
    closeOnBackpressureLimit: true,
    sendPings: true,
    open(ws) {
      const c = ws.data;
      c.ws = ws;
      all.add(c);
      unregistered.add(c);
      c.timer = setTimeout(() => !c.id && drop(c, "no registration in time"), REGISTER_TIMEOUT_MS);
      ws.send(JSON.stringify({ t: "challenge", nonce: Buffer.from(c.nonce).toString("base64") }));
    },
    message(ws, data) {
      const c = ws.data;
      try {
        if (typeof data !== "string") {
          if (!c.sink) return drop(c, "binary frame");
          c.sink.data(data);
          return;
        }
        if (data.length > MAX_TEXT) return drop(c, "frame too large");
        const now = Date.now();
        c.tokens = Math.min(MESSAGES_PER_SECOND, c.tokens + ((now - c.at) / 1000) * MESSAGES_PER_SECOND);
        c.at = now;
        if (c.tokens < 1) return drop(c, "over the message rate");
        c.tokens--;
        const m = JSON.parse(data);
        if (!c.id) {
          if (m?.t !== "register" || c.registering) return drop(c, "expected register");
          return void register(c, m).catch((err) => drop(c, `bad message: ${(err as Error).message}`));
        }
        if (m?.t === "present" && typeof m.id === "string" && isNodeId(m.id))
          return void c.ws.send(JSON.stringify({ t: "present", id: m.id, registered: byId.has(m.id) || opts.local?.id === m.id }));
        if (m?.t !== "send" || typeof m.to !== "string" || !isNodeId(m.to) || typeof m.msg !== "object" || m.msg === null) return drop(c, "expected send");
        if (opts.local && m.to === opts.local.id) {
          stats.forwarded++;
          return opts.local.receive(m.msg);
        }
        const dest = byId.get(m.to);
        if (!dest) return void c.ws.send(JSON.stringify({ t: "undeliverable", to: m.to }));
        dest.ws.send(JSON.stringify({ t: "msg", msg: m.msg }));
        stats.forwarded++;
      } catch (err) {
        drop(c, `bad message: ${(err as Error).message}`);
      }
    },
    close(ws) {
      const c = ws.data;
      if (c.closed) return;
      c.closed = true;
      all.delete(c);
      unregistered.delete(c);
      limits.release(c.addr);
      clearTimeout(c.timer);
      if (c.sink) {
        stats.tethered--;
        c.sink.closed();
      }
      if (c.id && byId.get(c.id) === c) {
        byId.delete(c.id);
        stats.clients = byId.size;
        log("info", `seed: node ${c.id} left`);
      }
    },
  };

  const fetch = (req: Request, server: Server<Client>): Response | Promise<Response> | undefined => {
    const addr = server.requestIP(req)?.address ?? "unknown";
    const url = new URL(req.url);
    if (url.pathname === "/v1/signal" && req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      if (!limits.connect(addr)) {
        stats.refusedConnections++;
        return new Response("Too Many Requests\n", { status: 429 });
      }
      if (all.size >= MAX_CLIENTS) {
        // Full: the oldest socket that has not registered makes room; if all have, refuse.
        const victim = unregistered.values().next().value as Client | undefined;
        if (!victim) {
          limits.release(addr);
          stats.refusedConnections++;
          return new Response("Service Unavailable\n", { status: 503 });
        }
        stats.evicted++;
        unregistered.delete(victim);
        all.delete(victim);
        drop(victim, "seed is full; evicted before registering");
      }
      const c = { addr, nonce: randomBytes(32), tokens: MESSAGES_PER_SECOND, at: Date.now() } as unknown as Client;
      if (server.upgrade(req, { data: c })) return undefined;
      limits.release(addr);
      return new Response("Bad Request\n", { status: 400 });
    }
    return app.fetch(req, { addr });
  };

  return {
    app,
    stats,
    limits,
    fetch,
    websocket,
    registered: (id) => byId.has(id),
    deliver(to, msg) {
      const dest = byId.get(to);
      if (!dest) return false;
      dest.ws.send(JSON.stringify({ t: "msg", msg }));
      stats.forwarded++;
      return true;
    },
    close() {
      for (const c of all) {
        try {
          c.ws.close();
        } catch {}
      }
    },
  };
}

export interface SeedTls {
  certFile: string;
  keyFile: string;
}

function readTls(t: SeedTls): { cert: string; key: string } {
  const read = (file: string, key: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch (e) {
      throw new Error(`[relay] ${key} = ${JSON.stringify(file)}: ${(e as Error).message}`);
    }
  };
  return { cert: read(t.certFile, "tls_cert"), key: read(t.keyFile, "tls_key") };
}

export interface Seed {
  port: number;
  stats: SeedStats;
  limits: SourceLimits;
  /** Re-read the certificate and key (SIGHUP): new connections get them; open ones keep theirs. */
  reloadTls(): void;
  /** Send a signal from the seed's own node to a registered node. */
  deliver(to: NodeId, msg: unknown): boolean;
  /** Whether node `id` is registered here now. */
  registered(id: NodeId): boolean;
  stop(): Promise<void>;
}

/** Serve signalling and invites (TCP, TLS when given a certificate) and STUN (UDP) on host:port. */
export async function startSeed(opts: SeedOptions & { listen: string; tls?: SeedTls }): Promise<Seed> {
  const log = opts.log ?? (() => {});
  const i = opts.listen.lastIndexOf(":");
  const host = opts.listen.slice(0, i).replace(/^\[|\]$/g, "");
  const core = seedCore(opts);
  const serve = (port: number) =>
    Bun.serve({
      hostname: host,
      port,
      // Only a TLS seed swaps listeners on reload; elsewhere a taken port must fail loudly.
      reusePort: !!opts.tls,
      fetch: core.fetch,
      websocket: core.websocket,
      maxRequestBodySize: 64 * 1024,
      idleTimeout: 10,
      ...(opts.tls ? { tls: readTls(opts.tls) } : {}),
    });
  const wanted = Number(opts.listen.slice(i + 1));
  // Port 0: the kernel picks the TCP port; STUN wants the same number over UDP, which another
  // socket may hold, so pick again a few times before giving up.
  let server: ReturnType<typeof serve>, stun: Awaited<ReturnType<typeof startStun>>;
  for (let attempt = 1; ; attempt++) {
    server = serve(wanted);
    try {
      stun = await startStun(host, server.port!);
      break;
    } catch (e) {
      await server.stop(true);
      if (wanted !== 0 || attempt >= 8) throw e;
    }
  }
  const port = server.port!;
  return {
    port,
    stats: core.stats,
    limits: core.limits,
    deliver: core.deliver,
    registered: core.registered,
    reloadTls() {
      if (!opts.tls) return;
      // A second listener on the same port with the new certificate, then the old one stops listening
      // (its open sockets carry on): no connection is dropped.
      let next: ReturnType<typeof serve>;
      try {
        next = serve(port);
      } catch (e) {
        // Started as root and dropped to [node] user: a port below 1024 cannot be bound again.
        throw new Error(`cannot listen on port ${port} again with the new certificate (${(e as Error).message}); restart the node to use it`);
      }
      const old = server;
      server = next;
      void old.stop(false);
      log("info", `seed: certificate ${opts.tls.certFile} reloaded`);
    },
    async stop() {
      core.close();
      stun.stop();
      await server.stop(true);
    },
  };
}
