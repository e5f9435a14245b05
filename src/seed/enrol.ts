// The seed's enrolment store: published enrolment certificates, content-addressed, and which were used.
//
//   PUT  /v1/enrol/:hash        body: an enrolment bundle (JSON {network, enrolment}); hash = its SHA-256
//   GET  /v1/enrol/:hash        the bundle
//   POST /v1/enrol/:hash/used   body JSON {node, sig}: sig by the enrolment key over the node id; 409 once used
// It holds only public, signed documents. A bundle must verify against the root named inside it, and a
// "used" mark must be signed by the enrolment key, so only a token holder can burn an invite.
import { Hono } from "hono";
import { isNodeId, verify } from "../identity/identity.ts";
import { decodeNetworkInfo } from "../trust/root.ts";
import { sha256hex, verifyEnrolment } from "../trust/enrolment.ts";

const MAX_ENTRIES = 1024;
const MAX_BODY = 16 * 1024;
export const USED_CONTEXT = "trellis enrolment used v1";

interface Entry {
  bundle: string;
  publicKey: Uint8Array;
  until: number;
  usedBy?: string;
}

export function enrolRoutes(now: () => number = () => Date.now() / 1000): Hono {
  const store = new Map<string, Entry>();
  const app = new Hono();
  const expire = () => {
    for (const [h, e] of store) if (now() > e.until + 86400) store.delete(h);
  };
  app.put("/v1/enrol/:hash", async (c) => {
    const body = await c.req.text();
    if (body.length > MAX_BODY) return c.json({ error: "too large" }, 413);
    const hash = c.req.param("hash");
    if (sha256hex(Buffer.from(body)) !== hash) return c.json({ error: "body does not match its hash" }, 400);
    try {
      const v = JSON.parse(body);
      const info = decodeNetworkInfo(JSON.stringify(v.network), "bundle");
      const e = verifyEnrolment(Uint8Array.from(Buffer.from(String(v.enrolment), "base64")), info.rootPub, info.id);
      expire();
      if (store.size >= MAX_ENTRIES) return c.json({ error: "store full" }, 507);
      if (!store.has(hash)) store.set(hash, { bundle: body, publicKey: e.publicKey, until: e.usableUntil });
      return c.json({ ok: true });
    } catch (err) {
      return c.json({ error: (err as Error).message }, 400);
    }
  });
  app.get("/v1/enrol/:hash", (c) => {
    const e = store.get(c.req.param("hash"));
    if (!e) return c.json({ error: "no such invite here" }, 404);
    if (e.usedBy) return c.json({ error: `invite already used by node ${e.usedBy}` }, 409);
    return c.text(e.bundle);
  });
  app.post("/v1/enrol/:hash/used", async (c) => {
    const e = store.get(c.req.param("hash"));
    if (!e) return c.json({ error: "no such invite here" }, 404);
    const v = (await c.req.json().catch(() => ({}))) as { node?: unknown; sig?: unknown };
    if (typeof v.node !== "string" || !isNodeId(v.node) || typeof v.sig !== "string") return c.json({ error: "want {node, sig}" }, 400);
    if (!verify(e.publicKey, USED_CONTEXT, Buffer.from(v.node), Buffer.from(v.sig, "base64"))) return c.json({ error: "not signed by the invite's key" }, 403);
    if (e.usedBy && e.usedBy !== v.node) return c.json({ error: `invite already used by node ${e.usedBy}` }, 409);
    e.usedBy = v.node;
    return c.json({ ok: true });
  });
  return app;
}
