// The real TUN device in a network namespace: ICMP and ICMPv6 echo answered through it, and the host
// keeps only the overlay prefixes as routes. Needs root; skipped otherwise.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { e2eReady, uniqueName } from "../../test/lib/netns.ts";

const root = e2eReady(import.meta.file);
const BUN = join(import.meta.dir, "../../node_modules/.bin/bun");
const run = (...cmd: string[]) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8" });

// Both ways of reaching the kernel: the C helper built by TinyCC, and libc through dlopen (the
// fallback where TinyCC cannot link, as on a Raspberry Pi without libc development files); and the C
// helper with one worker reading and writing (TRELLIS_TUN_WORKERS=1, ./duplex-worker.ts).
for (const mode of ["cc", "libc", "one"] as const) {
const NS = `trl-${uniqueName(`tun${mode}`)}`;
let fixture: ChildProcess;

describe.skipIf(!root)(`linux TUN (namespace, ${mode})`, () => {
  beforeAll(async () => {
    expect(run("ip", "netns", "add", NS).status).toBe(0);
    run("ip", "-n", NS, "link", "set", "lo", "up");
    fixture = spawn("ip", ["netns", "exec", NS, BUN, join(import.meta.dir, "echo-fixture.ts"), "tltest0", "fd74:7265:6c6c::1", "100.64.9.1"], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, TRELLIS_TUN_FFI: mode === "libc" ? "libc" : "cc", ...(mode === "one" ? { TRELLIS_TUN_WORKERS: "1" } : {}) } });
    await new Promise<void>((resolve, reject) => {
      fixture.stdout!.on("data", (d) => String(d).includes("ready") && resolve());
      fixture.on("exit", (c) => reject(new Error(`fixture exited ${c}`)));
    });
  });

  afterAll(() => {
    fixture?.kill("SIGKILL");
    run("ip", "netns", "del", NS);
  });

  test("the interface is up with its addresses and MTU", () => {
    const link = run("ip", "-n", NS, "-j", "addr", "show", "dev", "tltest0");
    const info = JSON.parse(link.stdout)[0];
    expect(info.mtu).toBe(1400);
    expect(info.flags).toContain("UP");
    const addrs = info.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toContain("fd74:7265:6c6c::1/48");
    expect(addrs).toContain("100.64.9.1/24");
  });

  test("echo requests routed into the TUN are answered through it (IPv4 and IPv6)", () => {
    const v6 = run("ip", "netns", "exec", NS, "ping", "-c", "3", "-i", "0.2", "-W", "2", "fd74:7265:6c6c::2");
    expect(v6.stdout).toMatch(/3 received/);
    const v4 = run("ip", "netns", "exec", NS, "ping", "-c", "3", "-i", "0.2", "-W", "2", "100.64.9.2");
    expect(v4.stdout).toMatch(/3 received/);
  });

  test("a burst of echo requests is answered whole: replies after a quiet spell written by the node's thread, the rest through the writer", () => {
    const flood = run("ip", "netns", "exec", NS, "ping", "-f", "-c", "200", "-W", "2", "100.64.9.2");
    expect(flood.stdout).toMatch(/200 received/);
  });

  test("only the overlay prefixes were added as routes; no default route", () => {
    const r4 = run("ip", "-n", NS, "route").stdout.trim().split("\n");
    expect(r4).toEqual(["100.64.9.0/24 dev tltest0 proto kernel scope link src 100.64.9.1"]);
    const r6 = run("ip", "-n", NS, "-6", "route").stdout;
    expect(r6).toContain("fd74:7265:6c6c::/48 dev tltest0");
    expect(r6).not.toContain("default");
    expect(run("ip", "-n", NS, "rule").stdout.trim().split("\n").length).toBe(3); // the kernel's three
  });
});
}
