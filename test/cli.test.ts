// The CLI as a person uses it: init, the offline join flow, help, and errors that name what is wrong.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN, CLI } from "./lib/nodes.ts";

// Each test spawns the CLI several times (~0.3 s each when idle, seconds on a loaded 2-core machine).
setDefaultTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), "trellis-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function trellis(...args: string[]) {
  const r = Bun.spawnSync([BUN, CLI, ...args]);
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("trellis CLI", () => {
  test("init prints only the node id, writes the key 0600, and keeps it on a second run", () => {
    const r = trellis("init", "--state", join(dir, "n1"));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^[0-9a-f]{32}\n$/);
    expect(statSync(join(dir, "n1/identity.key")).mode & 0o777).toBe(0o600);
    expect(trellis("init", "--state", join(dir, "n1")).out).toBe(r.out);
  });

  test("every verb has --help; unknown verbs and flags are usage errors", () => {
    for (const v of ["init", "up", "status", "ping", "network", "join", "sign", "revoke"]) {
      const r = trellis(v, "--help");
      expect(r.code).toBe(0);
      expect(r.out).toStartWith(`Usage: trellis ${v}`);
    }
    expect(trellis("frobnicate").code).toBe(2);
    expect(trellis("init", "--nope").err).toContain("--nope");
  });

  test("up with a bad config names the file, line and key, and exits non-zero", () => {
    const f = join(dir, "bad.toml");
    writeFileSync(f, `[node]\nname = "ok"\n[relay]\nmax_peers = "lots"\n`);
    const r = trellis("up", "--config", f);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${f}:4: [relay] max_peers: expected an integer`);
  });

  test("the offline join flow: network create, join --request, sign, join --install", () => {
    const state = join(dir, "n2");
    const id = trellis("init", "--state", state).out.trim();
    const netId = trellis("network", "create", "home", "--out", join(dir, "root")).out.trim();
    expect(netId).toMatch(/^[0-9a-f]{32}$/);
    expect(statSync(join(dir, "root/root.key")).mode & 0o777).toBe(0o600);
    const req = trellis("join", "--request", "--name", "laptop", "--state", state).out.trim();
    expect(req).toStartWith("trellis-req1:");
    const signed = trellis("sign", req, "--root", join(dir, "root"), "--ipv4", "100.64.0.9/24", "--tags", "dev", "--expires", "30d");
    expect(signed.code).toBe(0);
    const cert = signed.out.trim();
    expect(cert).toStartWith("trellis-cert1:");
    const inst = trellis("join", "--install", cert, "--state", state);
    expect(inst.code).toBe(0);
    expect(inst.err).toContain(`joined network ${netId} as laptop (100.64.0.9) tags dev`);
    // A certificate for another node, and a damaged one, are refused with the reason.
    const other = join(dir, "n3");
    trellis("init", "--state", other);
    expect(trellis("join", "--install", cert, "--state", other).err).toMatch(/certificate names node .* not /);
    expect(trellis("join", "--install", cert.slice(0, -40), "--state", state).err).toMatch(/damaged|malformed|truncated/);
    expect(trellis("network", "create", "home", "--out", join(dir, "root")).err).toContain("refusing to overwrite");
    // Rights come from the root: sign --subnets/--exit, and the joined node is told what it may route.
    const r4 = join(dir, "n4");
    trellis("init", "--state", r4);
    const rreq = trellis("join", "--request", "--name", "router", "--state", r4).out.trim();
    const rcert = trellis("sign", rreq, "--root", join(dir, "root"), "--ipv4", "100.64.0.10/24", "--subnets", "192.168.50.0/24", "--exit").out.trim();
    expect(trellis("join", "--install", rcert, "--state", r4).err).toContain("as router (100.64.0.10), may route 192.168.50.0/24 and may serve as an exit node,");
  });
});

describe("invites (against a real seed on loopback)", () => {
  test("invite → join TOKEN; a used, expired or tampered token gets a clear error", async () => {
    const { startSeed } = await import("../src/seed/server.ts");
    const { decodeToken, encodeToken } = await import("../src/trust/enrolment.ts");
    const seed = await startSeed({ listen: "127.0.0.1:0" });
    const port = seed.port;
    // The seed runs in this process: spawn the CLI asynchronously.
    const cli = async (...args: string[]) => {
      const p = Bun.spawn([BUN, CLI, ...args], { stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      return { code, out, err };
    };
    try {
      trellis("network", "create", "office", "--out", join(dir, "root-office"));
      const inv = await cli("invite", "--root", join(dir, "root-office"), "--seed", `http://127.0.0.1:${port}`, "--name", "printer", "--ipv4", "100.64.2.5/24", "--tags", "iot");
      expect(inv.code).toBe(0);
      const token = inv.out.trim();
      expect(token).toStartWith("trellis1:");
      expect(token.length).toBeLessThan(200);
      // Tampered (another key seed) and expired tokens are refused before anything is used.
      const t = decodeToken(token);
      const tampered = encodeToken({ ...t, seed: t.seed.map((b, i) => (i === 0 ? b ^ 1 : b)) });
      trellis("init", "--state", join(dir, "p1"));
      expect((await cli("join", tampered, "--state", join(dir, "p1"))).err).toContain("tampered");
      const expired = encodeToken({ ...t, expires: Math.floor(Date.now() / 1000) - 10 });
      expect((await cli("join", expired, "--state", join(dir, "p1"))).err).toContain("expired");
      expect((await cli("join", "trellis1:AAAA", "--state", join(dir, "p1"))).err).toContain("damaged");
      // The real one works once.
      const ok = await cli("join", token, "--state", join(dir, "p1"));
      expect(ok.code).toBe(0);
      expect(ok.err).toContain("as printer (100.64.2.5) tags iot");
      trellis("init", "--state", join(dir, "p2"));
      const again = await cli("join", token, "--state", join(dir, "p2"));
      expect(again.code).not.toBe(0);
      expect(again.err).toContain("already used");
    } finally {
      await seed.stop();
    }
  }, 60_000); // spawns the CLI six times: slow on a loaded machine
});
