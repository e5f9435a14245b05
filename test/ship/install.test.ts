// Shipping: build the binaries, install from a local release server into a throwaway root, check files,
// modes and the unit; refuse a corrupted download; keep config and identity on a re-run; run the
// installed binary (x64 natively, arm64 under qemu when available) and a two-node tunnel with it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { isRoot, TestNet } from "../lib/netns.ts";
import { pairWithSeed, TestNode, waitFor } from "../lib/nodes.ts";

setDefaultTimeout(180_000);
const ROOT = resolve(import.meta.dir, "../..");
const DIST = join(ROOT, "dist");
const root = isRoot();
let server: ReturnType<typeof Bun.serve>;
let base: string;
const work = mkdtempSync(join(tmpdir(), "trellis-ship-"));

const run = (cmd: string[], env: Record<string, string> = {}) => {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", env: { ...process.env, ...env } });
  return { code: r.status ?? -1, out: r.stdout ?? "", err: r.stderr ?? "" };
};
/** Like run, but asynchronous: the installer downloads from the server in this very process. */
const runAsync = async (cmd: string[], env: Record<string, string> = {}) => {
  const p = Bun.spawn(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
};
const install = (target: string, args: string[] = [], url = base) =>
  runAsync(["sh", join(ROOT, "install/install.sh"), ...args], { TRELLIS_BASE_URL: url, TRELLIS_ROOT: target, TRELLIS_INIT: "systemd", TRELLIS_LIBC: "glibc" });
const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

beforeAll(() => {
  const b = run([process.execPath, join(ROOT, "scripts/build.ts"), "--target", "x64,arm64"]);
  if (b.code !== 0) throw new Error(`build failed: ${b.err}`);
  // A release server: /latest/* is dist/, /corrupt/* is dist/ with the x64 binary altered.
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const [, channel, file] = new URL(req.url).pathname.split("/");
      const path = join(DIST, file ?? "");
      if (!file || !existsSync(path) || (channel !== "latest" && channel !== "corrupt")) return new Response("not found", { status: 404 });
      if (channel === "corrupt" && file === "trellis-linux-x64") {
        const bytes = new Uint8Array(readFileSync(path));
        bytes[bytes.length - 100] ^= 0xff;
        return new Response(bytes);
      }
      return new Response(Bun.file(path));
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(() => {
  server?.stop(true);
  rmSync(work, { recursive: true, force: true });
});

describe("build", () => {
  test("x64 and arm64 binaries with checksums", () => {
    const sums = readFileSync(join(DIST, "SHA256SUMS"), "utf8");
    for (const f of ["trellis-linux-x64", "trellis-linux-arm64", "install.sh", "trellis.toml", "trellis.service"]) expect(sums).toMatch(new RegExp(`^[0-9a-f]{64}  ${f}$`, "m"));
    const check = spawnSync("sha256sum", ["-c", "--ignore-missing", "SHA256SUMS"], { cwd: DIST, encoding: "utf8" });
    expect(check.status).toBe(0);
  });

  test("the arm64 binary is an aarch64 ELF, and runs under qemu where it can be installed", () => {
    const head = readFileSync(join(DIST, "trellis-linux-arm64")).subarray(0, 20);
    expect([...head.subarray(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]); // \x7fELF
    expect(head[4]).toBe(2); // 64-bit
    expect(head.readUInt16LE(18)).toBe(183); // e_machine = EM_AARCH64
    if (!existsSync("/usr/bin/qemu-aarch64-static") || !existsSync("/usr/aarch64-linux-gnu/lib")) {
      const apt = run(["sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6-arm64-cross >/dev/null 2>&1"]);
      if (apt.code !== 0) return console.warn("qemu-user-static not installable here: arm64 run skipped");
    }
    const r = run(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", join(DIST, "trellis-linux-arm64"), "version"]);
    expect(r.out).toMatch(/^trellis \d+\.\d+\.\d+ .*linux-arm64/);
  });
});

describe("install.sh into a throwaway root", () => {
  const target = join(work, "root");

  test("installs the binary, config and a valid hardened unit", async () => {
    const r = await install(target);
    expect(r.code).toBe(0);
    const bin = join(target, "usr/local/bin/trellis");
    expect(mode(bin)).toBe("755");
    expect(mode(join(target, "etc/trellis/trellis.toml"))).toBe("644");
    expect(mode(join(target, "var/lib/trellis"))).toBe("700");
    const unit = readFileSync(join(target, "etc/systemd/system/trellis.service"), "utf8");
    for (const d of ["CapabilityBoundingSet=CAP_NET_ADMIN", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=trellis", "DeviceAllow=/dev/net/tun rw"]) expect(unit).toContain(d);
    expect(run([bin, "version"]).out).toMatch(/^trellis \d+\.\d+\.\d+ .*linux-x64/);
    // systemd-analyze checks the unit; its binary path is pointed into the throwaway root.
    if (existsSync("/usr/bin/systemd-analyze")) {
      const copy = join(work, "trellis.service");
      writeFileSync(copy, unit.replaceAll("/usr/local/bin/trellis", bin));
      const v = run(["systemd-analyze", "verify", copy]);
      expect(v.err.trim()).toBe("");
      expect(v.code).toBe(0);
    } else console.warn("systemd-analyze not present: unit verification skipped");
  });

  test("--relay writes a config with relaying enabled", async () => {
    const t = join(work, "relay-root");
    expect((await install(t, ["--relay"])).code).toBe(0);
    const conf = readFileSync(join(t, "etc/trellis/trellis.toml"), "utf8");
    expect(conf).toMatch(/^enabled = true$/m);
  });

  test("a corrupted download is refused and nothing is installed", async () => {
    // Release "corrupt" on the test server: the true SHA256SUMS with a tampered x64 binary.
    const bad = join(work, "corrupt-root");
    const r = await install(bad, ["--version", "corrupt"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("checksum mismatch for trellis-linux-x64");
    expect(existsSync(join(bad, "usr/local/bin/trellis"))).toBe(false);
    expect(existsSync(join(bad, "etc/systemd/system/trellis.service"))).toBe(false);
    expect(existsSync(join(bad, "etc/trellis/trellis.toml"))).toBe(false);
  });

  test("a re-run upgrades in place and keeps the config and the identity", async () => {
    const conf = join(target, "etc/trellis/trellis.toml");
    writeFileSync(conf, '[node]\nname = "kept"\n');
    const key = join(target, "var/lib/trellis/identity.key");
    expect(run([join(target, "usr/local/bin/trellis"), "init", "--state", join(target, "var/lib/trellis")]).code).toBe(0);
    const keyBefore = readFileSync(key);
    const r = await install(target);
    expect(r.code).toBe(0);
    expect(r.err).toContain("upgraded");
    expect(readFileSync(conf, "utf8")).toBe('[node]\nname = "kept"\n');
    expect(readFileSync(key).equals(keyBefore)).toBe(true);
  });

  test("--uninstall removes binary and unit and keeps config and identity", async () => {
    expect((await install(target, ["--uninstall"])).code).toBe(0);
    expect(existsSync(join(target, "usr/local/bin/trellis"))).toBe(false);
    expect(existsSync(join(target, "etc/systemd/system/trellis.service"))).toBe(false);
    expect(existsSync(join(target, "etc/trellis/trellis.toml"))).toBe(true);
    expect(existsSync(join(target, "var/lib/trellis/identity.key"))).toBe(true);
    expect((await install(target)).code).toBe(0); // back, for the tunnel test
  });
});

describe.skipIf(!root)("the installed x64 binary carries a two-node tunnel (namespaces)", () => {
  let net: TestNet;
  const nodes: TestNode[] = [];
  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => {});
    net?.destroy();
    delete process.env.TRELLIS_BIN;
  });

  test("ping through the tunnel with the installed binary", async () => {
    process.env.TRELLIS_BIN = join(work, "root/usr/local/bin/trellis");
    net = new TestNet("ship");
    const dir = join(work, "nodes");
    mkdirSync(dir);
    const { seed, a, b } = pairWithSeed(net, dir);
    nodes.push(seed, a, b);
    await seed.start();
    await Promise.all([a.start(), b.start()]);
    await waitFor("session", () => a.api("/v1/status").peers?.find((p: any) => p.id === b.id && p.session), 30000);
    const out = spawnSync("ip", ["netns", "exec", a.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "100.64.0.3"], { encoding: "utf8" }).stdout;
    expect(out).toMatch(/3 received/);
  });
});

describe("shell scripts", () => {
  test("install.sh and the init script pass shellcheck as POSIX sh, and dash parses the installer", () => {
    if (!existsSync("/usr/bin/shellcheck")) return console.warn("shellcheck not installed: skipped");
    const r = run(["shellcheck", "-s", "sh", join(ROOT, "install/install.sh"), join(ROOT, "install/trellis.init"), join(ROOT, "scripts/deps.sh")]);
    expect(r.out + r.err).toBe("");
    expect(r.code).toBe(0);
    if (existsSync("/usr/bin/dash") || existsSync("/bin/dash")) expect(run(["dash", "-n", join(ROOT, "install/install.sh")]).code).toBe(0);
  });
});
