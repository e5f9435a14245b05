// `trellis netcheck` against an https:// seed: TLS verified when its CA is trusted, a FAIL that says
// what to do when it is not. The seed is a TLS server on loopback with a certificate made by openssl.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { trellisCommand } from "./lib/nodes.ts";

const openssl = spawnSync("openssl", ["version"]).status === 0;
if (!openssl) console.error("!! skipped (no openssl to make a certificate): test/netcheck-tls.test.ts");

describe.skipIf(!openssl)("netcheck and TLS seeds", () => {
  let dir: string, server: ReturnType<typeof Bun.serve>, url: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "trellis-netcheck-tls-"));
    const r = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
    if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
    server = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") }, fetch: () => Response.json({ ok: true }) });
    url = `https://127.0.0.1:${server.port}`;
  });

  afterAll(() => {
    server?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  const netcheck = async (env: Record<string, string> = {}) => {
    const p = Bun.spawn([...trellisCommand(), "netcheck", "--seed", url], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { out, err, code };
  };

  test("a self-signed seed: FAIL, TLS not trusted, and what to do", async () => {
    const r = await netcheck();
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^FAIL {2}seed ${url}: HTTPS TLS failed \\(.*self.signed.*\\) — the seed's certificate is not trusted here: .*NODE_EXTRA_CA_CERTS`, "m"));
  });

  test("with its CA trusted: reachable, TLS verified, with the handshake's time", async () => {
    const r = await netcheck({ NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") });
    expect(r.out).toMatch(new RegExp(`^ok {4}seed ${url}: HTTPS reachable in [\\d.]+ ms, TLS verified \\(first request with handshake [\\d.]+ ms\\)$`, "m"));
  });
});
