// The local HTTP API (hono): status, peers and ping for the CLI and for people with curl.
import { Hono } from "hono";
import { NodeError, type Node } from "../node/node.ts";
import { guard, type ApiAccess } from "./guard.ts";
import { metricsRegistry } from "./metrics.ts";
import { pageRoutes } from "./page.ts";
import { apiTokenPath, createApiToken } from "./token.ts";

/** Pings the API starts: a burst, then this many a second (each may make the node look a peer up). */
const PING_BURST = 20;
const PING_PER_SECOND = 10;

/** The API; `access` (Host check, token) guards every route — see guard.ts. */
export function apiApp(node: Node, access: ApiAccess): Hono {
  const app = new Hono();
  app.use("*", guard(access));
  const pings = { tokens: PING_BURST, at: performance.now() };
  app.get("/v1/health", (c) => c.json({ ok: true, state: node.state }));
  app.get("/v1/status", (c) => c.json(node.status()));
  app.get("/v1/peers", (c) => c.json(node.status().peers));
  app.get("/v1/paths", (c) => c.json({ weights: node.weights, paths: node.paths() }));
  app.get("/v1/relays", (c) => c.json(node.relays()));
  const metrics = metricsRegistry(node);
  app.get("/metrics", async (c) => c.body(await metrics.metrics(), 200, { "content-type": metrics.contentType }));
  // An outside policy takes over by setting the reward weights (what a learner trained offline on the
  // decision log produces); they hold until the next reload.
  app.post("/v1/paths/weights", async (c) => {
    let w: unknown;
    try {
      w = await c.req.json();
    } catch {
      return c.json({ error: "body must be JSON: {\"latency\": 0.5, \"loss\": 0.3, \"goodput\": 0.2}" }, 400);
    }
    const o = w as Record<string, unknown>;
    for (const k of ["latency", "loss", "goodput"])
      if (typeof o?.[k] !== "number" || !Number.isFinite(o[k] as number) || (o[k] as number) < 0 || (o[k] as number) > 1)
        return c.json({ error: `weight "${k}" must be a number from 0 to 1` }, 400);
    node.setWeights({ latency: o.latency as number, loss: o.loss as number, goodput: o.goodput as number });
    return c.json({ weights: node.weights });
  });
  app.get("/v1/ping", async (c) => {
    const target = c.req.query("node");
    if (!target) return c.json({ error: "missing query parameter 'node'" }, 400);
    const t = performance.now();
    pings.tokens = Math.min(PING_BURST, pings.tokens + ((t - pings.at) / 1000) * PING_PER_SECOND);
    pings.at = t;
    if (pings.tokens < 1) return c.json({ error: `too many pings: at most ${PING_PER_SECOND} a second` }, 429);
    pings.tokens--;
    const timeout = Number(c.req.query("timeout_ms") ?? 3000);
    if (!Number.isFinite(timeout) || timeout < 1 || timeout > 30000)
      return c.json({ error: "timeout_ms must be between 1 and 30000" }, 400);
    try {
      const r = await node.ping(target, timeout);
      return c.json({ id: r.peer.id, name: r.peer.name ?? null, ipv6: r.peer.ipv6, path: r.path, rtt_ms: r.rttMs });
    } catch (e) {
      if (e instanceof NodeError) return c.json({ error: e.message, code: e.code }, 404);
      throw e;
    }
  });
  app.post("/v1/revocations", async (c) => {
    const text = (await c.req.text()).trim();
    if (!text || text.length > 16384) return c.json({ error: "body must be a revocation record (base64)" }, 400);
    try {
      const id = node.addRevocation(Uint8Array.from(Buffer.from(text, "base64")));
      return c.json({ revoked: id ?? null, new: id !== undefined });
    } catch (e) {
      return c.json({ error: (e as Error).message }, 400);
    }
  });
  app.post("/v1/policy", async (c) => {
    const text = (await c.req.text()).trim();
    if (!text || text.length > 200_000) return c.json({ error: "body must be a policy record (base64)" }, 400);
    const version = node.setPolicy(Uint8Array.from(Buffer.from(text, "base64")));
    if (version === undefined) return c.json({ error: "not a newer policy signed by the root of a network this node is in" }, 400);
    return c.json({ version });
  });
  app.route("/", pageRoutes(node));
  app.onError((e, c) => c.json({ error: String(e?.message ?? e) }, 500));
  app.notFound((c) => c.json({ error: `no such endpoint: ${c.req.method} ${c.req.path}` }, 404));
  return app;
}

/**
 * Serve the API on host:port with a fresh token in `<stateDir>/api.token` (0600); returns the bound
 * port, the token and a stop function.
 */
export function serveApi(node: Node, host: string, port: number, stateDir: string): { port: number; token: string; stop(): void } {
  const token = createApiToken(stateDir);
  let bound = port;
  const app = apiApp(node, { host, port: () => bound, token, tokenPath: apiTokenPath(stateDir) });
  const server = Bun.serve({ hostname: host, port, fetch: app.fetch });
  bound = server.port!;
  return { port: bound, token, stop: () => server.stop(true) };
}
