// Shipping: build the binaries, install from a local release server into a throwaway root, check files,
// modes and the unit; refuse a corrupted or non-running download; keep config and identity on a re-run;
// run the installed binary (x64 natively, arm64 under qemu when available) and a two-node tunnel with it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { e2eReady, TestNet } from "../lib/netns.ts";
import { pairWithSeed, TestNode, waitFor } from "../lib/nodes.ts";

setDefaultTimeout(180_000);
const ROOT = resolve(import.meta.dir, "../..");
const INSTALLER = join(ROOT, "install/install.sh");
const root = e2eReady(import.meta.file);
let server: ReturnType<typeof Bun.serve>;
let base: string;
const work = mkdtempSync(join(tmpdir(), "trellis-ship-"));
const DIST = join(work, "dist"); // built here, never into the checkout
const scratch = join(work, "tmp"); // the installer's TMPDIR: must be empty after every run
mkdirSync(scratch);

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
const install = (target: string, args: string[] = [], env: Record<string, string> = {}) =>
  runAsync(["sh", INSTALLER, ...args], { TRELLIS_BASE_URL: base, TRELLIS_ROOT: target, TRELLIS_INIT: "systemd", TMPDIR: scratch, ...env });
const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
/** Every file under dir, relative, sorted: "nothing installed" means this is empty. */
const tree = (dir: string): string[] => (existsSync(dir) ? (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(join(dir, f)).isFile()).sort() : []);
/** A PATH whose `uname -m` prints `machine`. */
const fakeUname = (machine: string) => {
  const dir = join(work, `uname-${machine}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "uname"), `#!/bin/sh\nif [ "$1" = -m ]; then echo ${machine}; else exec /bin/uname "$@"; fi\n`);
  chmodSync(join(dir, "uname"), 0o755);
  return `${dir}:${process.env.PATH}`;
};
/** ELF e_machine of a file: 62 x86-64, 183 aarch64. */
const elfMachine = (path: string) => {
  const head = readFileSync(path).subarray(0, 20);
  expect([...head.subarray(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]); // \x7fELF
  expect(head[4]).toBe(2); // ELFCLASS64
  expect(head[5]).toBe(1); // little-endian
  return head.readUInt16LE(18);
};

// A release "broken": a self-consistent SHA256SUMS whose x64 binary is a script that cannot run.
const BROKEN_BIN = new TextEncoder().encode("#!/bin/sh\necho 'cannot execute: missing libstdc++.so.6' >&2\nexit 127\n");

beforeAll(() => {
  // One build per target, all four: the musl binaries are checked too and SHA256SUMS stays whole.
  const b = run([process.execPath, join(ROOT, "scripts/build.ts"), "--target", "all", "--out", DIST]);
  if (b.code !== 0) throw new Error(`build failed: ${b.err}`);
  console.log(b.out.trim());
  // The release server. /latest/* and /v0.1.0/* are dist/; /corrupt/* is dist/ with the x64 binary
  // altered; /broken/* is dist/ with a non-running x64 binary and matching sums; /cut/install.sh is
  // the installer cut off in the middle.
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const [, channel, file] = new URL(req.url).pathname.split("/");
      const path = join(DIST, file ?? "");
      if (!file || !existsSync(path) || !["latest", "v0.1.0", "corrupt", "broken", "cut"].includes(channel)) return new Response("not found", { status: 404 });
      if (channel === "corrupt" && file === "trellis-linux-x64") {
        const bytes = new Uint8Array(readFileSync(path));
        bytes[bytes.length - 100] ^= 0xff;
        return new Response(bytes);
      }
      if (channel === "broken" && file === "trellis-linux-x64") return new Response(BROKEN_BIN);
      if (channel === "broken" && file === "SHA256SUMS") {
        const real = readFileSync(path, "utf8").replace(/^[0-9a-f]{64}(?=  trellis-linux-x64$)/m, sha(BROKEN_BIN));
        return new Response(real);
      }
      if (channel === "cut" && file === "install.sh") {
        const text = readFileSync(path, "utf8");
        return new Response(text.slice(0, Math.floor(text.length * 0.6)));
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
  test("binaries for x64 and arm64 (glibc and musl) with checksums", () => {
    const sums = readFileSync(join(DIST, "SHA256SUMS"), "utf8");
    const files = ["trellis-linux-x64", "trellis-linux-arm64", "trellis-linux-x64-musl", "trellis-linux-arm64-musl", "install.sh", "trellis.toml", "trellis.service", "trellis.init"];
    for (const f of files) expect(sums).toMatch(new RegExp(`^[0-9a-f]{64}  ${f}$`, "m"));
    const check = spawnSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: DIST, encoding: "utf8" });
    expect(check.stdout + check.stderr).not.toContain("FAILED");
    expect(check.status).toBe(0);
    expect(elfMachine(join(DIST, "trellis-linux-x64"))).toBe(62);
    expect(elfMachine(join(DIST, "trellis-linux-x64-musl"))).toBe(62);
    expect(elfMachine(join(DIST, "trellis-linux-arm64-musl"))).toBe(183);
    // The musl binaries ask for the musl loader (running them needs a musl libstdc++, not on Debian).
    expect(readFileSync(join(DIST, "trellis-linux-x64-musl")).subarray(0, 4096).toString("latin1")).toContain("/lib/ld-musl-x86_64.so.1");
    expect(readFileSync(join(DIST, "trellis-linux-arm64-musl")).subarray(0, 4096).toString("latin1")).toContain("/lib/ld-musl-aarch64.so.1");
    console.warn("musl binaries: ELF checked; not run (Debian has no musl libstdc++)");
  });

  test("the arm64 binary is an aarch64 ELF, and runs under qemu where it can be installed", () => {
    expect(elfMachine(join(DIST, "trellis-linux-arm64"))).toBe(183); // EM_AARCH64
    if (!existsSync("/usr/bin/qemu-aarch64-static") || !existsSync("/usr/aarch64-linux-gnu/lib")) {
      const apt = run(["sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6-arm64-cross >/dev/null 2>&1"]);
      if (apt.code !== 0) return console.warn("SKIPPED: qemu-user-static not installable here (run scripts/deps.sh): arm64 binary not run");
    }
    const r = run(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", join(DIST, "trellis-linux-arm64"), "version"]);
    expect(r.out).toMatch(/^trellis \d+\.\d+\.\d+ .*linux-arm64/);
    // ARMv8.0 cores without LSE atomics (Pi 3 and Zero 2 W: Cortex-A53; Pi 4: Cortex-A72) run it too,
    // including identity creation (ML-DSA, ML-KEM keys).
    for (const cpu of ["cortex-a53", "cortex-a72"]) {
      const state = join(work, `qemu-${cpu}`);
      const v = run(["qemu-aarch64-static", "-cpu", cpu, "-L", "/usr/aarch64-linux-gnu", join(DIST, "trellis-linux-arm64"), "init", "--state", state]);
      expect(v.err).toContain("new identity");
      expect(v.code).toBe(0);
    }
  });
});

describe("install.sh into a throwaway root", () => {
  const target = join(work, "root");

  test("installs the binary, config and a valid hardened unit", async () => {
    const r = await install(target); // libc detected: glibc here (even with Debian's musl package present)
    expect(r.err).toContain("downloading trellis-linux-x64 (latest)");
    expect(r.code).toBe(0);
    expect(tree(scratch)).toEqual([]);
    expect(tree(target)).toEqual(["etc/systemd/system/trellis.service", "etc/trellis/trellis.toml", "usr/local/bin/trellis"]);
    const bin = join(target, "usr/local/bin/trellis");
    expect(sha(readFileSync(bin))).toBe(sha(readFileSync(join(DIST, "trellis-linux-x64"))));
    expect(mode(bin)).toBe("755");
    expect(mode(join(target, "etc/trellis"))).toBe("755");
    expect(mode(join(target, "etc/trellis/trellis.toml"))).toBe("644");
    expect(readFileSync(join(target, "etc/trellis/trellis.toml"), "utf8")).toBe(readFileSync(join(ROOT, "config/trellis.toml"), "utf8"));
    expect(mode(join(target, "var/lib/trellis"))).toBe("700");
    const unitPath = join(target, "etc/systemd/system/trellis.service");
    expect(mode(unitPath)).toBe("644");
    const unit = readFileSync(unitPath, "utf8");
    for (const d of [
      "ExecStart=/usr/local/bin/trellis up --config /etc/trellis/trellis.toml",
      'ExecReload=/bin/sh -c "kill -HUP $MAINPID"',
      "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE\n",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "StateDirectory=trellis",
      "DevicePolicy=closed",
      "DeviceAllow=/dev/net/tun rw",
      "RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_UNIX",
    ]) expect(unit).toContain(d);
    expect(unit).not.toContain("ReadWritePaths=/etc"); // the config directory stays read-only
    expect(run([bin, "version"]).out).toMatch(/^trellis \d+\.\d+\.\d+ .*linux-x64/);
    // systemd-analyze checks the unit (its binary path pointed into the throwaway root) and scores it.
    if (!existsSync("/usr/bin/systemd-analyze")) return console.warn("SKIPPED: systemd-analyze not present (apt package systemd; run scripts/deps.sh): unit not verified");
    const copy = join(work, "trellis.service");
    writeFileSync(copy, unit.replaceAll("/usr/local/bin/trellis", bin));
    const v = run(["systemd-analyze", "verify", copy]);
    expect(v.err.trim()).toBe("");
    expect(v.code).toBe(0);
    const s = run(["systemd-analyze", "security", "--offline=true", copy]);
    const exposure = Number(/Overall exposure level for trellis\.service: ([\d.]+)/.exec(s.out + s.err)?.[1]);
    if (Number.isNaN(exposure)) console.warn("systemd-analyze security --offline unsupported here: exposure not scored");
    else expect(exposure).toBeLessThanOrEqual(3.0);
  });

  test("curl | sh works, and --relay writes a config with relaying enabled", async () => {
    const t = join(work, "relay-root");
    const r = await runAsync(["sh", "-c", `curl -fsSL ${base}/latest/install.sh | sh -s -- --relay --version v0.1.0`], { TRELLIS_BASE_URL: base, TRELLIS_ROOT: t, TRELLIS_INIT: "systemd", TMPDIR: scratch });
    expect(r.err).toContain("(relay enabled)");
    expect(r.code).toBe(0);
    const conf = readFileSync(join(t, "etc/trellis/trellis.toml"), "utf8");
    expect(conf).toMatch(/^\[relay\]\n(#.*\n)*enabled = true$/m);
    expect(run([join(t, "usr/local/bin/trellis"), "version"]).code).toBe(0);
  });

  test("a corrupted download is refused and nothing is installed", async () => {
    // Release "corrupt" on the test server: the true SHA256SUMS with a tampered x64 binary.
    const bad = join(work, "corrupt-root");
    const r = await install(bad, ["--version", "corrupt"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("checksum mismatch for trellis-linux-x64");
    expect(r.err).toContain("refusing to install");
    expect(tree(bad)).toEqual([]);
    expect(tree(scratch)).toEqual([]);
  });

  test("a download that does not run here is refused and nothing is installed", async () => {
    const bad = join(work, "broken-root");
    const r = await install(bad, ["--version", "broken"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("does not run here");
    expect(tree(bad)).toEqual([]); // no trellis, no trellis.new
    expect(tree(scratch)).toEqual([]);
  });

  test("an installer cut short in transit runs nothing", async () => {
    const t = join(work, "cut-root");
    const r = await runAsync(["sh", "-c", `curl -fsSL ${base}/cut/install.sh | sh`], { TRELLIS_BASE_URL: base, TRELLIS_ROOT: t, TRELLIS_INIT: "systemd", TMPDIR: scratch });
    expect(r.err).not.toContain("downloading");
    expect(tree(t)).toEqual([]);
  });

  test("architecture: aarch64 gets the arm64 binary; 32-bit ARM and others get a clear error", async () => {
    const t = join(work, "arm-root");
    const r = await install(t, [], { PATH: fakeUname("aarch64"), TRELLIS_NO_RUN_CHECK: "1" });
    expect(r.code).toBe(0);
    expect(elfMachine(join(t, "usr/local/bin/trellis"))).toBe(183);
    const pi32 = await install(join(work, "pi32-root"), [], { PATH: fakeUname("armv7l") });
    expect(pi32.code).not.toBe(0);
    expect(pi32.err).toContain("needs a 64-bit OS");
    const mips = await install(join(work, "mips-root"), [], { PATH: fakeUname("mips") });
    expect(mips.code).not.toBe(0);
    expect(mips.err).toContain("unsupported architecture mips");
    expect(tree(join(work, "pi32-root")).concat(tree(join(work, "mips-root")))).toEqual([]);
  });

  test("musl and OpenWrt: the -musl binary and a procd init script instead of the unit", async () => {
    const t = join(work, "openwrt-root");
    const r = await install(t, [], { TRELLIS_INIT: "procd", TRELLIS_LIBC: "musl", TRELLIS_NO_RUN_CHECK: "1" });
    expect(r.err).toContain("downloading trellis-linux-x64-musl");
    expect(r.code).toBe(0);
    expect(tree(t)).toEqual(["etc/init.d/trellis", "etc/trellis/trellis.toml", "usr/local/bin/trellis"]);
    expect(mode(join(t, "etc/init.d/trellis"))).toBe("755");
    expect(sha(readFileSync(join(t, "usr/local/bin/trellis")))).toBe(sha(readFileSync(join(DIST, "trellis-linux-x64-musl"))));
    expect(run(["sh", "-n", join(t, "etc/init.d/trellis")]).code).toBe(0);
    const none = await install(join(work, "plain-root"), [], { TRELLIS_INIT: "none" });
    expect(none.err).toContain("run 'trellis up");
    expect(tree(join(work, "plain-root"))).toEqual(["etc/trellis/trellis.toml", "usr/local/bin/trellis"]);
  });

  test("a re-run upgrades in place and keeps the config and the identity", async () => {
    const conf = join(target, "etc/trellis/trellis.toml");
    writeFileSync(conf, '[node]\nname = "kept"\n');
    const key = join(target, "var/lib/trellis/identity.key");
    expect(run([join(target, "usr/local/bin/trellis"), "init", "--state", join(target, "var/lib/trellis")]).code).toBe(0);
    const keyBefore = readFileSync(key);
    const r = await install(target, ["--relay"]);
    expect(r.code).toBe(0);
    expect(r.err).toContain("upgraded");
    expect(r.err).toContain("--relay does not change an existing config");
    expect(readFileSync(conf, "utf8")).toBe('[node]\nname = "kept"\n');
    expect(readFileSync(key).equals(keyBefore)).toBe(true);
    expect(mode(join(target, "var/lib/trellis"))).toBe("700");
    expect(tree(target).filter((f) => f.endsWith(".new"))).toEqual([]);
  });

  test("--uninstall removes binary and unit and keeps config and identity; --purge removes all", async () => {
    expect((await install(target, ["--uninstall"])).code).toBe(0);
    expect(tree(target).filter((f) => !f.startsWith("var/lib/trellis/"))).toEqual(["etc/trellis/trellis.toml"]);
    expect(existsSync(join(target, "var/lib/trellis/identity.key"))).toBe(true);
    expect((await install(target)).code).toBe(0); // back, for the tunnel test
    const t = join(work, "relay-root");
    expect((await install(t, ["--uninstall", "--purge"])).code).toBe(0);
    expect(tree(t)).toEqual([]);
    const wrong = await install(t, ["--purge"]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toContain("--purge goes with --uninstall");
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
    expect(run(["sh", "-n", INSTALLER]).code).toBe(0);
    if (existsSync("/usr/bin/dash") || existsSync("/bin/dash")) expect(run(["dash", "-n", INSTALLER]).code).toBe(0);
    if (!existsSync("/usr/bin/shellcheck")) return console.warn("SKIPPED: shellcheck not installed (run scripts/deps.sh)");
    const r = run(["shellcheck", "-s", "sh", INSTALLER, join(ROOT, "install/trellis.init"), join(ROOT, "scripts/deps.sh")]);
    expect(r.out + r.err).toBe("");
    expect(r.code).toBe(0);
  });
});
