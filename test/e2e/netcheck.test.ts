// e2e: `trellis netcheck` from hosts with no NAT, behind an endpoint-independent ("full cone") NAT,
// behind a symmetric NAT, and with UDP blocked; two bare seeds, one behind a 1400-byte link (path MTU).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { BUN, ROOT, trellisCommand } from "../lib/nodes.ts";

setDefaultTimeout(60_000);
const ready = e2eReady(import.meta.file);

/** Start a bare seed in `ns` on `ip`; resolves with its URL once it listens. */
function seedIn(ns: string, ip: string, procs: ChildProcess[]): Promise<string> {
  const p = spawn("ip", ["netns", "exec", ns, BUN, `${ROOT}/test/lib/seed-only.ts`, ip], { stdio: ["ignore", "pipe", "inherit"] });
  procs.push(p);
  return new Promise((resolve, reject) => {
    let out = "";
    p.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /seed (\d+)/.exec(out);
      if (m) resolve(`http://${ip}:${m[1]}`);
    });
    p.on("exit", (code) => reject(new Error(`seed in ${ns} exited (${code})`)));
  });
}

describe.skipIf(!ready)("trellis netcheck (namespaces)", () => {
  let net: TestNet;
  const procs: ChildProcess[] = [];
  let seeds: string[] = [];
  const netcheck = (host: string, args: string[] = []) => {
    const r = Bun.spawnSync(["ip", "netns", "exec", net.host(host).ns, ...trellisCommand(), "netcheck", ...seeds.flatMap((s) => ["--seed", s]), ...args]);
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  const json = (host: string) => {
    const r = netcheck(host, ["--json"]);
    if (!r.out.trim().startsWith("{")) throw new Error(`netcheck --json in ${host}: ${r.out}${r.err}`);
    return { code: r.code, ...JSON.parse(r.out) };
  };

  beforeAll(async () => {
    net = new TestNet("nck");
    const s1 = net.addHost("s1"), s2 = net.addHost("s2");
    net.addHost("pub");
    net.addNatHost("fc");
    net.addNatHost("sym", true);
    net.addHost("blk");
    // s2's link is 1400 bytes: the router answers larger don't-fragment packets with "fragmentation needed".
    sh(["ip", "-n", net.router, "link", "set", `h${s2.subnet}`, "mtu", "1400"]);
    sh(["ip", "-n", s2.ns, "link", "set", "eth0", "mtu", "1400"]);
    // blk: UDP out is dropped (TCP still goes).
    sh(["ip", "netns", "exec", net.host("blk").ns, "nft", "-f", "-"], { input: "table inet trl_noudp {\n chain out {\n  type filter hook output priority 0; policy accept;\n  meta l4proto udp drop\n }\n}\n" });
    seeds = await Promise.all([seedIn(s1.ns, s1.ip, procs), seedIn(s2.ns, s2.ip, procs)]);
  });

  afterAll(() => {
    for (const p of procs) p.kill("SIGKILL");
    net?.destroy();
  });

  test("no NAT: UDP works, the seeds see this host's own address, path MTU 1500 and 1400", () => {
    const r = json("pub");
    expect(r.code).toBe(0);
    expect(r.mapping).toBe("none");
    const [a, b] = r.probe.seeds;
    expect(a.udp.mapped.address).toBe(net.host("pub").ip);
    expect(a.mtu).toBe(1500);
    expect(b.mtu).toBe(1400);
    expect(a.http.status).toBe(200);
    const text = netcheck("pub").out;
    console.log(`netcheck, no NAT:\n${text}`);
    expect(text).toMatch(/^ok {4}UDP: sends and receives/m);
    expect(text).toMatch(/^ok {4}NAT: none/m);
    expect(text).toContain(`path MTU to ${net.host("s2").ip}`);
    expect(text).toMatch(/1400 bytes \(less than Ethernet's 1500.*\) — nothing to do/);
    for (const line of text.trim().split("\n")) expect(line).toMatch(/^(ok  |WARN|FAIL|info)  \S/);
  });

  test("behind an endpoint-independent NAT: both seeds see one mapping; hole punching works", () => {
    const r = json("fc");
    expect(r.code).toBe(0);
    expect(r.mapping).toBe("endpoint-independent");
    const mapped = r.probe.seeds.map((s: any) => `${s.udp.mapped.address}:${s.udp.mapped.port}`);
    expect(mapped[0]).toBe(mapped[1]);
    expect(mapped[0].startsWith("198.18.")).toBe(true); // the NAT's outside address, not 10.200.x
    const text = netcheck("fc").out;
    console.log(`netcheck, endpoint-independent NAT:\n${text}`);
    expect(text).toMatch(/^ok {4}NAT: endpoint-independent mapping .*hole punching works/m);
  });

  test("behind a symmetric NAT: the seeds see different ports; says relays carry traffic and what would help", () => {
    const r = json("sym");
    expect(r.code).toBe(0);
    expect(r.mapping).toBe("endpoint-dependent");
    const text = netcheck("sym").out;
    console.log(`netcheck, symmetric NAT:\n${text}`);
    expect(text).toMatch(/^WARN {2}NAT: endpoint-dependent mapping \(symmetric; .* — traffic with other peers goes through relays/m);
    const peer = netcheck("sym", ["--peer", "bravo", "--api", "127.0.0.1:1"]).out;
    expect(peer).toMatch(/direct link to bravo: cannot ask the node/);
  });

  test("UDP blocked: FAIL with what to do, the seeds still reachable over TCP, exit status 1", () => {
    const r = json("blk");
    expect(r.code).toBe(1);
    expect(r.mapping).toBe("no-udp");
    expect(r.probe.seeds.every((s: any) => s.udp === null && s.http.status === 200)).toBe(true);
    const text = netcheck("blk").out;
    console.log(`netcheck, UDP blocked:\n${text}`);
    expect(text).toMatch(/^FAIL {2}UDP: no STUN answer from any of 2 seed\(s\).* — no direct links or UDP relays from here: allow outbound UDP/m);
    expect(text).toMatch(/^ok {4}seed http:\/\/.* reachable in/m);
  });
});
