// The seed: forwards signed signalling between registered nodes over WebSocket (hono on Bun), and
// answers STUN on the same port number over UDP. It holds no keys and cannot forge what it forwards.
//
// Protocol flow on /v1/signal (JSON text frames):
//   seed → node  {t:"challenge", nonce}                  random 32 bytes, base64
//   node → seed  {t:"register", pub, sig}                public identity; ML-DSA signature over the nonce
//   seed → node  {t:"registered", id, relay?}            the node id the seed now routes to this socket, and
//                                                        the seed's own node id when it also relays (link to it)
//   node → seed  {t:"send", to, msg}                     a signed signal envelope for node `to`
//   seed → node  {t:"msg", msg}  /  {t:"undeliverable", to}
// Anything else, oversized frames, or a node over its message rate gets the socket closed.
import { Hono } from "hono";
import { upgradeWebSocket, websocket } from "hono/bun";
import type { WSContext } from "hono/ws";
import { randomBytes } from "node:crypto";
import { decodePublicIdentity, isNodeId, verify, type NodeId } from "../identity/identity.ts";
import { MAX_SIGNAL_BYTES, REGISTER_CONTEXT } from "../signal/messages.ts";
import { startStun } from "./stun.ts";
import { enrolRoutes } from "./enrol.ts";

export { REGISTER_CONTEXT };
const MAX_FRAME = MAX_SIGNAL_BYTES + 1024;
const MAX_CLIENTS = 4096;
const MESSAGES_PER_SECOND = 20;
const REGISTER_TIMEOUT_MS = 10_000;

import type { Log } from "../log.ts";

interface Client {
  ws: WSContext;
  nonce: Uint8Array;
  id?: NodeId;
  tokens: number;
  at: number;
  timer?: ReturnType<typeof setTimeout>;
}

export interface SeedStats {
  clients: number;
  forwarded: number;
  rejected: number;
}

/**
 * The seed's own node, served in-process: signals addressed to it go to `receive` (it needs no
 * WebSocket registration with itself), and it sends to registered nodes with the returned deliver().
 */
export interface LocalNode {
  id: NodeId;
  receive(msg: unknown): void;
}

export function seedApp(log: Log, relay?: NodeId, local?: LocalNode): { app: Hono; stats: SeedStats; close(): void; deliver(to: NodeId, msg: unknown): boolean } {
  const byId = new Map<NodeId, Client>();
  let open = 0;
  const stats: SeedStats = { clients: 0, forwarded: 0, rejected: 0 };
  const app = new Hono();
  const sockets = new Set<WSContext>();

  const drop = (c: Client, why: string) => {
    stats.rejected++;
    log("debug", `seed: closing ${c.id ?? "unregistered client"}: ${why}`);
    try {
      c.ws.close(1008, why.slice(0, 100));
    } catch {}
  };

  app.get("/v1/health", (ctx) => ctx.json({ ok: true, clients: byId.size }));
  app.route("/", enrolRoutes());
  app.get(
    "/v1/signal",
    upgradeWebSocket(() => {
      const c: Client = { ws: undefined as unknown as WSContext, nonce: randomBytes(32), tokens: MESSAGES_PER_SECOND, at: Date.now() };
      return {
        onOpen(_e, ws) {
          c.ws = ws;
          sockets.add(ws);
          if (++open > MAX_CLIENTS) return drop(c, "seed is full");
          c.timer = setTimeout(() => !c.id && drop(c, "no registration in time"), REGISTER_TIMEOUT_MS);
          ws.send(JSON.stringify({ t: "challenge", nonce: Buffer.from(c.nonce).toString("base64") }));
        },
        onMessage(e) {
          try {
            const data = e.data;
            if (typeof data !== "string") return drop(c, "binary frame");
            if (data.length > MAX_FRAME) return drop(c, "frame too large");
            const now = Date.now();
            c.tokens = Math.min(MESSAGES_PER_SECOND, c.tokens + ((now - c.at) / 1000) * MESSAGES_PER_SECOND);
            c.at = now;
            if (c.tokens < 1) return drop(c, "over the message rate");
            c.tokens--;
            const m = JSON.parse(data);
            if (!c.id) {
              if (m?.t !== "register" || typeof m.pub !== "string" || typeof m.sig !== "string") return drop(c, "expected register");
              const pub = decodePublicIdentity(Buffer.from(m.pub, "base64"));
              if (!verify(pub, REGISTER_CONTEXT, c.nonce, Buffer.from(m.sig, "base64"))) return drop(c, "bad registration signature");
              c.id = pub.id;
              clearTimeout(c.timer);
              const old = byId.get(pub.id);
              if (old && old !== c) drop(old, "replaced by a new registration");
              byId.set(pub.id, c);
              stats.clients = byId.size;
              log("info", `seed: node ${pub.id} registered`);
              c.ws.send(JSON.stringify({ t: "registered", id: pub.id, ...(relay ? { relay } : {}) }));
              return;
            }
            if (m?.t !== "send" || typeof m.to !== "string" || !isNodeId(m.to) || typeof m.msg !== "object" || m.msg === null) return drop(c, "expected send");
            if (local && m.to === local.id) {
              stats.forwarded++;
              return local.receive(m.msg);
            }
            const dest = byId.get(m.to);
            if (!dest) return c.ws.send(JSON.stringify({ t: "undeliverable", to: m.to }));
            dest.ws.send(JSON.stringify({ t: "msg", msg: m.msg }));
            stats.forwarded++;
          } catch (err) {
            drop(c, `bad message: ${(err as Error).message}`);
          }
        },
        onClose(_e, ws) {
          sockets.delete(ws);
          open--;
          clearTimeout(c.timer);
          if (c.id && byId.get(c.id) === c) {
            byId.delete(c.id);
            stats.clients = byId.size;
            log("info", `seed: node ${c.id} left`);
          }
        },
        onError() {},
      };
    }),
  );
  app.notFound((ctx) => ctx.json({ error: "not found" }, 404));
  app.onError((err, ctx) => ctx.json({ error: String(err.message) }, 400));
  return {
    app,
    stats,
    deliver(to, msg) {
      const dest = byId.get(to);
      if (!dest) return false;
      dest.ws.send(JSON.stringify({ t: "msg", msg }));
      stats.forwarded++;
      return true;
    },
    close() {
      for (const ws of sockets) {
        try {
          ws.close();
        } catch {}
      }
    },
  };
}

/** Serve signalling (TCP) and STUN (UDP) on host:port. */
export async function startSeed(opts: { listen: string; log?: Log; relay?: NodeId; local?: LocalNode }): Promise<{ port: number; stats: SeedStats; deliver(to: NodeId, msg: unknown): boolean; stop(): Promise<void> }> {
  const log = opts.log ?? (() => {});
  const i = opts.listen.lastIndexOf(":");
  const host = opts.listen.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(opts.listen.slice(i + 1));
  const seed = seedApp(log, opts.relay, opts.local);
  // Port 0: the kernel picks the TCP port; STUN wants the same number over UDP, which another
  // socket may hold, so pick again a few times before giving up.
  let server: ReturnType<typeof Bun.serve>, stun: Awaited<ReturnType<typeof startStun>>;
  for (let attempt = 1; ; attempt++) {
    server = Bun.serve({ hostname: host, port, fetch: seed.app.fetch, websocket: websocket as any, maxRequestBodySize: 64 * 1024 });
    try {
      stun = await startStun(host, server.port!);
      break;
    } catch (e) {
      await server.stop(true);
      if (port !== 0 || attempt >= 8) throw e;
    }
  }
  return {
    port: server.port!,
    stats: seed.stats,
    deliver: seed.deliver,
    async stop() {
      seed.close();
      stun.stop();
      await server.stop(true);
    },
  };
}
