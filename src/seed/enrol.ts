// The seed's enrolment store: published enrolment certificates, keyed by their own hash, and which were used.
//
//   PUT  /v1/enrol/:hash        body: an enrolment bundle (JSON {network, enrolment}); hash = SHA-256 of
//                               the enrolment's bytes (not of the JSON: no padded variants)
//   GET  /v1/enrol/:hash        the bundle (canonical JSON)
//   POST /v1/enrol/:hash/used   body JSON {node, sig}: sig by the enrolment key over the node id; 409 once used
// It holds only public, signed documents. A bundle must be for a network the seed serves and verify
// against that network's root; it is kept at most MAX_LIFETIME_S, at most PER_NETWORK per network. A
// "used" mark must be signed by the enrolment key, so only a token holder can burn an invite.
import { Hono } from "hono";
import { isNodeId, verify } from "../identity/identity.ts";
import { decodeNetworkInfo, encodeNetworkInfo } from "../trust/root.ts";
import { sha256hex, verifyEnrolment } from "../trust/enrolment.ts";

const MAX_ENTRIES = 4096;
const PER_NETWORK = 256;
/** The store keeps an invite this long at most, whatever its own expiry says. */
export const MAX_LIFETIME_S = 30 * 86400;
/** A used or expired invite is remembered this long (so a second redemption gets "already used"). */
const KEEP_AFTER_S = 86400;
const MAX_BODY = 16 * 1024;
export const USED_CONTEXT = "trellis enrolment used v1";

/** Which networks' invites a seed stores: their root keys by network id (undefined: any network). */
export interface InviteScope {
  roots(): Map<string, Uint8Array> | undefined;
}

interface Entry {
  bundle: string;
  network: string;
  publicKey: Uint8Array;
  until: number;
  usedBy?: string;
}

export function enrolRoutes(opts: { scope?: InviteScope; costly?(addr: string): boolean; now?: () => number } = {}): Hono<{ Bindings: { addr: string } }> {
  const now = opts.now ?? (() => Date.now() / 1000);
  const store = new Map<string, Entry>();
  const perNetwork = new Map<string, number>();
  const app = new Hono<{ Bindings: { addr: string } }>();
  const expire = () => {
    const t = now();
    for (const [h, e] of store)
      if (t > e.until + KEEP_AFTER_S) {
        store.delete(h);
        perNetwork.set(e.network, (perNetwork.get(e.network) ?? 1) - 1);
      }
  };
  app.put("/v1/enrol/:hash", async (c) => {
    const body = await c.req.text();
    if (body.length > MAX_BODY) return c.json({ error: "too large" }, 413);
    const hash = c.req.param("hash");
    let v: { network?: unknown; enrolment?: unknown };
    try {
      v = JSON.parse(body);
    } catch {
      return c.json({ error: "not JSON" }, 400);
    }
    const enrolment = Uint8Array.from(Buffer.from(String(v?.enrolment ?? ""), "base64"));
    if (sha256hex(enrolment) !== hash) return c.json({ error: "the enrolment does not match its hash" }, 400);
    if (store.has(hash)) return c.json({ ok: true });
    try {
      const info = decodeNetworkInfo(JSON.stringify(v.network), "bundle");
      const root = opts.scope?.roots();
      if (root) {
        const ours = root.get(info.id);
        if (!ours) return c.json({ error: `this seed does not serve network ${info.id}` }, 403);
        if (!Buffer.from(ours).equals(Buffer.from(info.rootPub))) return c.json({ error: "the bundle's root key is not the network's" }, 403);
      }
      expire();
      if ((perNetwork.get(info.id) ?? 0) >= PER_NETWORK) return c.json({ error: `network ${info.id} has ${PER_NETWORK} invites stored here already` }, 507);
      if (store.size >= MAX_ENTRIES) return c.json({ error: "store full" }, 507);
      if (opts.costly && !opts.costly(c.env?.addr ?? "unknown")) return c.json({ error: "too many requests from this address; retry later" }, 429);
      const e = verifyEnrolment(enrolment, info.rootPub, info.id);
      const until = Math.min(e.usableUntil, now() + MAX_LIFETIME_S);
      if (until < now()) return c.json({ error: "the invite has expired" }, 400);
      const bundle = JSON.stringify({ network: JSON.parse(encodeNetworkInfo(info)), enrolment: Buffer.from(enrolment).toString("base64") });
      store.set(hash, { bundle, network: info.id, publicKey: e.publicKey, until });
      perNetwork.set(info.id, (perNetwork.get(info.id) ?? 0) + 1);
      return c.json({ ok: true });
    } catch (err) {
      return c.json({ error: (err as Error).message }, 400);
    }
  });
  app.get("/v1/enrol/:hash", (c) => {
    const e = store.get(c.req.param("hash"));
    if (!e || now() > e.until + KEEP_AFTER_S) return c.json({ error: "no such invite here" }, 404);
    if (e.usedBy) return c.json({ error: `invite already used by node ${e.usedBy}` }, 409);
    return c.text(e.bundle);
  });
  app.post("/v1/enrol/:hash/used", async (c) => {
    const e = store.get(c.req.param("hash"));
    if (!e) return c.json({ error: "no such invite here" }, 404);
    const v = (await c.req.json().catch(() => ({}))) as { node?: unknown; sig?: unknown };
    if (typeof v.node !== "string" || !isNodeId(v.node) || typeof v.sig !== "string") return c.json({ error: "want {node, sig}" }, 400);
    if (e.usedBy && e.usedBy !== v.node) return c.json({ error: `invite already used by node ${e.usedBy}` }, 409);
    if (opts.costly && !opts.costly(c.env?.addr ?? "unknown")) return c.json({ error: "too many requests from this address; retry later" }, 429);
    if (!verify(e.publicKey, USED_CONTEXT, Buffer.from(v.node), Buffer.from(v.sig, "base64"))) return c.json({ error: "not signed by the invite's key" }, 403);
    e.usedBy = v.node;
    return c.json({ ok: true });
  });
  return app;
}
