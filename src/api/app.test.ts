// The local API's guard, attack by attack: DNS rebinding, cross-site POSTs, no token, ping floods.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiApp, serveApi } from "./app.ts";
import { ownHost } from "./guard.ts";
import { createApiToken, readApiToken } from "./token.ts";
import { NodeError, type Node } from "../node/node.ts";

const TOKEN = "ab".repeat(32);

/** Just enough of a Node for the routes under test; records what the API made it do. */
function fakeNode() {
  const calls = { weights: 0, pings: [] as string[], revocations: 0, policies: 0 };
  const node = {
    state: "up",
    weights: { latency: 0.5, loss: 0.3, goodput: 0.2 },
    status: () => ({ node: { id: "self" }, peers: [] }),
    paths: () => [],
    relays: () => [],
    setWeights(w: any) {
      calls.weights++;
      node.weights = w;
    },
    async ping(target: string) {
      calls.pings.push(target);
      throw new NodeError("unknown-peer", `no known node matches ${target}`);
    },
    addRevocation: () => (calls.revocations++, undefined),
    setPolicy: () => (calls.policies++, undefined),
  };
  return { node: node as unknown as Node, calls };
}

function app(host = "127.0.0.1", port = 7080) {
  const f = fakeNode();
  return { ...f, app: apiApp(f.node, { host, port: () => port, token: TOKEN }) };
}

const req = (a: ReturnType<typeof app>["app"], path: string, init: RequestInit & { host?: string } = {}) => {
  const headers = new Headers(init.headers);
  headers.set("host", init.host ?? "127.0.0.1:7080");
  return a.request(`http://${init.host ?? "127.0.0.1:7080"}${path}`, { ...init, headers });
};
const auth = { authorization: `Bearer ${TOKEN}` };

describe("local API guard", () => {
  test("DNS rebinding: a page's own host name in Host is refused, reads included", async () => {
    const { app: a } = app();
    for (const host of ["evil.example:7080", "rebind.attacker.test:7080", "127.0.0.1.nip.io:7080", "localhost.evil:7080"]) {
      const r = await req(a, "/v1/status", { host });
      expect(r.status).toBe(421);
    }
    // the right address, the wrong port (another origin) is refused as well
    expect((await req(a, "/v1/status", { host: "127.0.0.1:8080" })).status).toBe(421);
    expect((await req(a, "/v1/status", { host: "127.0.0.1" })).status).toBe(421);
    for (const host of ["127.0.0.1:7080", "localhost:7080", "[::1]:7080", "LOCALHOST:7080"]) expect((await req(a, "/v1/status", { host })).status).toBe(200);
  });

  test("a cross-site text/plain POST (no preflight) changes nothing", async () => {
    const { app: a, calls } = app();
    const body = JSON.stringify({ latency: 1, loss: 0, goodput: 0 });
    // what a form or fetch(..., {mode: "no-cors"}) from another site sends
    const r1 = await req(a, "/v1/paths/weights", { method: "POST", body, headers: { "content-type": "text/plain", origin: "http://evil.example", "sec-fetch-site": "cross-site" } });
    expect(r1.status).toBe(403);
    // the same without the browser's Origin (a local process, or a rebinding page's same-origin POST): no token, no change
    const r2 = await req(a, "/v1/paths/weights", { method: "POST", body, headers: { "content-type": "text/plain" } });
    expect(r2.status).toBe(401);
    const r3 = await req(a, "/v1/paths/weights", { method: "POST", body, headers: { "content-type": "text/plain", authorization: "Bearer " + "00".repeat(32) } });
    expect(r3.status).toBe(401);
    for (const path of ["/v1/revocations", "/v1/policy"]) expect((await req(a, path, { method: "POST", body: "AAAA" })).status).toBe(401);
    expect(calls).toMatchObject({ weights: 0, revocations: 0, policies: 0 });
    // with the token it works
    const ok = await req(a, "/v1/paths/weights", { method: "POST", body, headers: auth });
    expect(ok.status).toBe(200);
    expect(calls.weights).toBe(1);
  });

  test("/v1/ping needs the token and is rate-limited", async () => {
    const { app: a, calls } = app();
    const id = "0123456789abcdef0123456789abcdef";
    expect((await req(a, `/v1/ping?node=${id}`)).status).toBe(401);
    expect(calls.pings.length).toBe(0);
    let limited = 0;
    for (let i = 0; i < 100; i++) if ((await req(a, `/v1/ping?node=${id}`, { headers: auth })).status === 429) limited++;
    // a burst of 20, then 10 a second: a hundred back to back reach the node at most ~21 times
    expect(calls.pings.length).toBeLessThanOrEqual(22);
    expect(limited).toBeGreaterThanOrEqual(78);
  });

  test("a wildcard listener takes IP literals and localhost, never a host name", () => {
    const access = { host: "0.0.0.0", port: () => 7080 };
    expect(ownHost("10.1.2.3:7080", access)).toBe(true);
    expect(ownHost("[fd00::1]:7080", access)).toBe(true);
    expect(ownHost("localhost:7080", access)).toBe(true);
    expect(ownHost("evil.example:7080", access)).toBe(false);
    expect(ownHost(undefined, access)).toBe(false);
    const specific = { host: "10.1.2.3", port: () => 7080 };
    expect(ownHost("10.1.2.3:7080", specific)).toBe(true);
    expect(ownHost("127.0.0.1:7080", specific)).toBe(false);
  });
});

describe("API token file", () => {
  test("0600, fresh at each start, read back by the CLI's reader", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trellis-token-"));
    try {
      const t1 = createApiToken(dir);
      expect(statSync(join(dir, "api.token")).mode & 0o777).toBe(0o600);
      expect(readApiToken(dir)).toBe(t1);
      const t2 = createApiToken(dir);
      expect(t2).not.toBe(t1);
      expect(readApiToken(dir)).toBe(t2);
      // a served API answers reads on its address, actions only with the file's token
      const { node } = fakeNode();
      const api = serveApi(node, "127.0.0.1", 0, dir);
      try {
        const base = `http://127.0.0.1:${api.port}`;
        expect((await fetch(`${base}/v1/health`)).status).toBe(200);
        const body = JSON.stringify({ latency: 1, loss: 0, goodput: 0 });
        expect((await fetch(`${base}/v1/paths/weights`, { method: "POST", body })).status).toBe(401);
        const ok = await fetch(`${base}/v1/paths/weights`, { method: "POST", body, headers: { authorization: `Bearer ${readApiToken(dir)}` } });
        expect(ok.status).toBe(200);
      } finally {
        api.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
