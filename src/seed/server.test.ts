// The seed facing the internet, on loopback: TLS checked by CA and by pin (a wrong one is an error naming
// the seed), a reloaded certificate, a plain 404 for what is not ours, and the bounds: connections per
// address, register deadline, frames over the limit, registrations per address, whom it registers.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePublicIdentity, generateIdentity, sign, type NodeId } from "../identity/identity.ts";
import { REGISTER_CONTEXT } from "../signal/messages.ts";
import { SignalClient } from "../signal/client.ts";
import { pemFingerprint, seedFetch } from "../signal/tls.ts";
import { makeCerts, type TestCerts } from "../../test/lib/certs.ts";
import { untilValue } from "../../test/lib/wait.ts";
import { startSeed, MAX_PAYLOAD, type Seed } from "./server.ts";

setDefaultTimeout(30_000);

const until = <T>(f: () => T) => untilValue(f, 10_000);

function client(url: string, opts: { ca?: string } = {}) {
  const logs: string[] = [];
  const c = new SignalClient(generateIdentity(), [url], () => {}, (_l, m) => void logs.push(m), opts);
  c.start();
  return { c, logs };
}

describe("seed over TLS (loopback)", () => {
  let dir: string, certs: TestCerts, selfSigned: TestCerts, seed: Seed, url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "trellis-seedtls-"));
    certs = makeCerts(join(dir, "ca"), ["localhost", "127.0.0.1"]);
    selfSigned = makeCerts(join(dir, "self"), ["127.0.0.1"], true, "self");
    seed = await startSeed({ listen: "127.0.0.1:0", tls: { certFile: certs.cert, keyFile: certs.key } });
    url = `https://127.0.0.1:${seed.port}`;
  });
  afterAll(async () => {
    await seed.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a node registers over https:// with [network] ca; without it, the error names the seed and why", async () => {
    const good = client(url, { ca: certs.caCert });
    await until(() => good.c.registered);
    const bad = client(url);
    await until(() => bad.logs.some((l) => l.includes(`seed ${url}`) && /certificate|self.signed|issuer/i.test(l)));
    expect(bad.c.registered).toBe(false);
    good.c.stop();
    bad.c.stop();
  });

  test("a pinned self-signed seed: the right pin registers, a wrong one is refused naming both", async () => {
    const s2 = await startSeed({ listen: "127.0.0.1:0", tls: { certFile: selfSigned.cert, keyFile: selfSigned.key } });
    try {
      const u = `https://127.0.0.1:${s2.port}`;
      const ok = client(`${u}#sha256=${selfSigned.fingerprint}`);
      await until(() => ok.c.registered);
      const wrong = client(`${u}#sha256=${"00".repeat(32)}`);
      await until(() => wrong.logs.some((l) => l.includes(`seed ${u}`) && l.includes("does not match the pin")));
      expect(wrong.c.registered).toBe(false);
      ok.c.stop();
      wrong.c.stop();
    } finally {
      await s2.stop();
    }
  });

  test("what is not ours is a plain 404; reloading the certificate serves the new one and keeps open sockets", async () => {
    const r = await seedFetch(url, "/wp-login.php", {}, certs.caCert);
    expect(r.status).toBe(404);
    expect(await r.text()).toBe("Not Found\n");
    const held = client(url, { ca: certs.caCert });
    await until(() => held.c.registered);
    // certbot renewed: same name, a new certificate (self-signed here, so its pin tells it apart).
    const renewed = makeCerts(join(dir, "renewed"), ["127.0.0.1"], true, "renewed");
    rmSync(certs.cert);
    rmSync(certs.key);
    Bun.spawnSync(["cp", renewed.cert, certs.cert]);
    Bun.spawnSync(["cp", renewed.key, certs.key]);
    seed.reloadTls();
    const pinned = client(`${url}#sha256=${renewed.fingerprint}`);
    await until(() => pinned.c.registered);
    expect(pemFingerprint(await Bun.file(certs.cert).text())).toBe(renewed.fingerprint.replace(/:/g, "").toLowerCase());
    expect(held.c.registered).toBe(true);
    held.c.stop();
    pinned.c.stop();
  });
});

describe("seed bounds (loopback, plain)", () => {
  let seed: Seed, url: string;
  const allowed = generateIdentity(), second = generateIdentity();

  beforeAll(async () => {
    seed = await startSeed({ listen: "127.0.0.1:0", admit: (r) => (r.id === allowed.public.id || r.id === second.public.id ? true : "not a member") });
    url = `http://127.0.0.1:${seed.port}`;
  });
  afterAll(() => seed.stop());

  const ws = (u = url) => new WebSocket(u.replace(/^http/, "ws") + "/v1/signal");
  const closed = (w: WebSocket) => new Promise<{ code: number; reason: string; at: number }>((r) => (w.onclose = (e) => r({ code: e.code, reason: e.reason, at: Date.now() })));

  test("connections per address are capped before the upgrade", async () => {
    const socks = Array.from({ length: 80 }, () => ws());
    const results = await Promise.all(socks.map((w) => new Promise<boolean>((r) => ((w.onopen = () => r(true)), (w.onerror = () => r(false))))));
    expect(results.filter(Boolean).length).toBe(64);
    expect(seed.stats.refusedConnections).toBeGreaterThanOrEqual(16);
    for (const w of socks) w.close();
    await until(() => seed.limits.size === 0);
  });

  test("a socket that does not register is closed after the deadline", async () => {
    const w = ws();
    const t0 = Date.now();
    const c = await closed(w);
    expect(c.reason).toContain("no registration in time");
    expect(c.at - t0).toBeLessThan(7_000);
  });

  test("a frame over the limit closes the socket without being read whole", async () => {
    const w = ws();
    await new Promise((r) => (w.onopen = r));
    const c = closed(w);
    w.send(new Uint8Array(MAX_PAYLOAD + 1));
    expect((await c).code).toBe(1009);
  });

  test("one registration check in flight per socket: a second message before the answer closes it (the signature is checked asynchronously)", async () => {
    const w = ws();
    const nonce = await new Promise<string>((r) => (w.onmessage = (e) => r(JSON.parse(String(e.data)).nonce)));
    const c = closed(w);
    const register = JSON.stringify({ t: "register", pub: Buffer.from(encodePublicIdentity(allowed.public)).toString("base64"), sig: Buffer.from(sign(allowed, REGISTER_CONTEXT, Buffer.from(nonce, "base64"))).toString("base64") });
    w.send(register);
    w.send(register);
    expect((await c).reason).toBe("expected register");
  });

  test("only admitted nodes register; fresh identities are refused and rate-limited per address", async () => {
    const ok = client(url);
    await Bun.sleep(300);
    expect(ok.c.registered).toBe(false);
    ok.c.stop();
    const member = new SignalClient(allowed, [url], () => {}, () => {});
    member.start();
    await until(() => member.registered);
    member.stop();
    const refusedBefore = seed.stats.refusedRegistrations;
    const many = Array.from({ length: 30 }, () => client(url));
    await until(() => seed.stats.refusedRegistrations - refusedBefore >= 30 && many.every((m) => m.logs.length));
    for (const m of many) m.c.stop();
    const reasons = many.flatMap((m) => m.logs).join("\n");
    expect(reasons).toContain("not served here");
    expect(reasons).toContain("too many registrations from this address");
  });

  test("a relayed id without its registration gets 'undeliverable', never a crash", async () => {
    const a = new SignalClient(allowed, [url], () => {}, () => {});
    a.start();
    await until(() => a.registered);
    expect(a.send("0".repeat(32) as NodeId, {} as never)).toBe(true);
    a.stop();
  });

  test("asked whether a node id is registered, the seed answers from its registrations (what a send would tell)", async () => {
    const a = new SignalClient(allowed, [url], () => {}, () => {});
    a.start();
    await until(() => a.registered);
    expect(await a.present(second.public.id, 2000)).toBe(false);
    expect(await a.present("0".repeat(32) as NodeId, 2000)).toBe(false);
    const b = new SignalClient(second, [url], () => {}, () => {});
    b.start();
    await until(() => b.registered);
    expect(await a.present(second.public.id, 2000)).toBe(true);
    expect(seed.registered(second.public.id)).toBe(true);
    b.stop();
    await until(() => !seed.registered(second.public.id));
    expect(await a.present(second.public.id, 2000)).toBe(false);
    a.stop();
  });
});
