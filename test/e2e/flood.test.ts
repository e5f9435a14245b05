// e2e: a flood against a TLS seed from a hostile namespace (test/lib/flood.ts: 1,000 WebSocket
// connections, 50 MB in oversized frames, registrations with fresh identities, 10,000 padded invite
// PUTs, STUN probes) while legitimate members register, signal, link, ping, and an invite is made and
// redeemed. All of those must succeed; STUN must not amplify; the seed's RSS and CPU are printed.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { BUN, ROOT, TestNode, teardown, tempDir, trellisCommand, waitFor } from "../lib/nodes.ts";
import { enrol } from "../lib/members.ts";
import { makeCerts, type TestCerts } from "../lib/certs.ts";
import { createNetwork } from "../../src/trust/root.ts";

setDefaultTimeout(300_000);
const root = e2eReady(import.meta.file);

/** The seed process's RSS (MB) and CPU seconds so far. */
function usage(pid: number): { rssMb: number; cpuS: number } {
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return { rssMb: rss, cpuS: (Number(f[11]) + Number(f[12])) / 100 };
}

describe.skipIf(!root)("a seed under a flood (namespaces)", () => {
  let net: TestNet, dir: string, certs: TestCerts;
  let seed: TestNode, d: TestNode, e: TestNode;
  const rootDir = () => join(dir, "root");

  beforeAll(async () => {
    dir = tempDir("e2e-flood");
    net = new TestNet("flood");
    for (const h of ["seed", "d", "e", "f", "evil"]) net.addHost(h);
    const seedIp = net.host("seed").ip;
    certs = makeCerts(join(dir, "certs"), [seedIp]);
    const seeds = [`https://${seedIp}:7443`];
    const home = createNetwork("home", rootDir());
    seed = new TestNode(net, { host: "seed", name: "seed", relay: true, extra: `tls_cert = ${JSON.stringify(certs.cert)}\ntls_key = ${JSON.stringify(certs.key)}` }, dir);
    d = new TestNode(net, { host: "d", name: "delta", seeds }, dir);
    e = new TestNode(net, { host: "e", name: "echo", seeds }, dir);
    d.spec.allow = [e.id];
    e.spec.allow = [d.id];
    for (const n of [seed, d, e]) {
      n.writeConfig();
      await Bun.write(n.configPath, (await Bun.file(n.configPath).text()).replace("[network]\n", `[network]\nca = ${JSON.stringify(certs.caCert)}\n`));
    }
    enrol(seed, home, "100.64.0.1");
    enrol(d, home, "100.64.0.5");
    enrol(e, home, "100.64.0.6");
    await seed.start();
  });

  afterAll(async () => {
    await teardown([d, e, seed], net, dir);
  });

  test("legitimate members register, link, ping and redeem an invite during the flood; STUN does not amplify", async () => {
    const seedUrl = `https://${net.host("seed").ip}:7443`;
    const pid = seed.pid!;
    const samples: { rssMb: number; cpuS: number; at: number }[] = [];
    const base = usage(pid);
    const sampler = setInterval(() => samples.push({ ...usage(pid), at: performance.now() }), 500);
    const flood = spawn("ip", ["netns", "exec", net.host("evil").ns, BUN, join(ROOT, "test/lib/flood.ts"), seedUrl, join(dir, "evil-root")], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOLD_S: "20" } });
    let floodOut = "", floodErr = "";
    flood.stdout.on("data", (x) => (floodOut += x));
    flood.stderr.on("data", (x) => (floodErr += x));
    const floodDone = new Promise((r) => flood.on("exit", r));
    const t0 = performance.now();
    try {
      await Bun.sleep(3000);
      // Legitimate members come up now: register, signal, link, session, ping.
      await Promise.all([d.start(), e.start()]);
      await waitFor("delta → echo session", () => d.api("/v1/status").peers?.find((p: any) => p.id === e.id && p.session), 90_000);
      // The first reply within 20 s (a loaded machine can hold the first packets a while).
      await waitFor("delta's ping answered", () => /[1-9]\d* received/.test(sh(["ip", "netns", "exec", d.ns, "ping", "-c", "1", "-W", "2", "100.64.0.6"], { allowFail: true })), 20_000);
      const legitDone = (performance.now() - t0) / 1000;
      // An invite made and redeemed through the same seed, over TLS with the private CA.
      const cli = (ns: string, args: string[]) => Bun.spawnSync(["ip", "netns", "exec", ns, ...trellisCommand(), ...args]);
      const inv = cli(net.host("f").ns, ["invite", "--root", rootDir(), "--seed", seedUrl, "--ca", certs.caCert, "--name", "foxtrot"]);
      expect(inv.stderr.toString()).toContain("published on 1 seed");
      const state = join(dir, "foxtrot");
      expect(cli(net.host("f").ns, ["init", "--state", state]).exitCode).toBe(0);
      const joined = cli(net.host("f").ns, ["join", inv.stdout.toString().trim(), "--ca", certs.caCert, "--state", state]);
      expect(joined.stderr.toString()).toContain("as foxtrot");
      console.log(`[flood] legit: delta and echo registered, linked, pinged ${legitDone.toFixed(1)} s into the flood; invite redeemed ${((performance.now() - t0) / 1000).toFixed(1)} s in`);
    } finally {
      await floodDone;
      clearInterval(sampler);
    }
    const report = JSON.parse(floodOut.trim().split("\n").pop() || "{}");
    const peak = Math.max(...samples.map((s) => s.rssMb));
    const last = samples.at(-1)!;
    const span = (last.at - samples[0].at) / 1000;
    console.log(`[flood] hostile client saw: ${JSON.stringify(report)}`);
    console.log(`[flood] seed: RSS ${base.rssMb.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB; CPU ${(last.cpuS - base.cpuS).toFixed(1)} s over ${span.toFixed(0)} s of flood (${((100 * (last.cpuS - base.cpuS)) / span).toFixed(0)}% of a core; shared, loaded machine)`);
    if (!report.stun) throw new Error(`flood client failed: ${floodErr.slice(-2000)}`);
    expect(report.stun.bytesIn).toBeLessThanOrEqual(report.stun.bytesOut);
    expect(report.stun.amplification).toBeLessThanOrEqual(1);
    expect(report.registrations.registered).toBe(0);
    // At most 64 at once from one address (over the run more open, as the seed closes those that never register).
    expect(report.connections.maxOpenAtOnce).toBeLessThanOrEqual(64);
    expect(report.invites.codes["200"] ?? 0).toBe(0);
    expect(peak).toBeLessThan(400);
  });
});
