// e2e: learned path selection with real nodes. Two relays; one drops 30% of what it receives
// (nftables numgen random; this kernel has no netem). Traffic settles on the good relay; then the good
// one degrades the same way and traffic moves. /metrics parses as Prometheus text; `trellis relays`
// shows the scores.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import parsePrometheus from "parse-prometheus-text-format";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";
import { enrol } from "../lib/members.ts";
import { createNetwork } from "../../src/trust/root.ts";

setDefaultTimeout(120_000);
const root = e2eReady(import.meta.file);

/** Drop `percent`% of what the host receives (input hook), or lift it. */
function lossy(net: TestNet, host: string, percent: number): void {
  net.exec(host, ["nft", "delete", "table", "inet", "trl_loss"], { allowFail: true });
  if (percent > 0) sh(["ip", "netns", "exec", net.host(host).ns, "nft", "-f", "-"], { input: `table inet trl_loss {\n chain in {\n  type filter hook input priority 0; policy accept;\n  numgen random mod 100 < ${percent} drop\n }\n}\n` });
}

describe.skipIf(!root)("learned path selection (namespaces)", () => {
  let net: TestNet, dir: string;
  const n: Record<string, TestNode> = {};
  let pinging: ReturnType<typeof setInterval> | undefined;
  const pathTo = (x: TestNode, y: TestNode) => x.api("/v1/status").peers?.find((p: any) => p.id === y.id)?.path as string | undefined;

  beforeAll(async () => {
    dir = tempDir("e2e-paths");
    net = new TestNet("pth");
    for (const h of ["r1", "r2"]) net.addHost(h);
    net.addNatHost("a");
    net.addNatHost("b");
    net.block("a", "b");
    const s1 = `http://${net.host("r1").ip}:7443`, s2 = `http://${net.host("r2").ip}:7443`;
    const home = createNetwork("home", join(dir, "root"));
    n.r1 = new TestNode(net, { host: "r1", name: "relay-1", relay: true, listen: `${net.host("r1").ip}:7443`, seeds: [s1] }, dir);
    n.r2 = new TestNode(net, { host: "r2", name: "relay-2", relay: true, listen: `${net.host("r2").ip}:7443`, seeds: [s1, s2] }, dir);
    n.a = new TestNode(net, { host: "a", name: "alpha", seeds: [s1, s2] }, dir);
    n.b = new TestNode(net, { host: "b", name: "bravo", seeds: [s1, s2] }, dir);
    [["r1", "100.64.6.11"], ["r2", "100.64.6.12"], ["a", "100.64.6.1"], ["b", "100.64.6.2"]].forEach(([h, ip]) => enrol(n[h], home, ip));
    await n.r1.start();
    await n.r2.start();
    await Promise.all([n.a.start(), n.b.start()]);
    for (const h of ["a", "b"]) await waitFor(`${h} on both relays`, () => (n[h].api("/v1/status").links ?? []).filter((l: any) => l.relay && l.alive).length === 2, 60_000);
    // Steady traffic a → b (the policy decides for destinations with traffic).
    pinging = setInterval(() => sh(["ip", "netns", "exec", n.a.ns, "ping", "-c", "1", "-W", "1", n.b.ipv6], { allowFail: true }), 300);
  });

  afterAll(async () => {
    if (pinging) clearInterval(pinging);
    await teardown(Object.values(n), net, dir);
  });

  test("with relay-1 dropping 30%, traffic settles on relay-2; when relay-2 degrades, it moves back", async () => {
    lossy(net, "r1", 30);
    await waitFor("a → b on relay-2", () => pathTo(n.a, n.b) === `relay:${n.r2.id}` && n.a.api("/v1/paths").paths.find((p: any) => p.peer === n.b.id)?.policy?.choice === `relay:${n.r2.id}`, 30_000);
    // It stays there: no flapping over the next 5 s.
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      seen.add(pathTo(n.a, n.b)!);
      await Bun.sleep(500);
    }
    expect([...seen]).toEqual([`relay:${n.r2.id}`]);
    const r = n.a.api("/v1/relays") as any[];
    const [bad, good] = [r.find((x) => x.peer === n.r1.id), r.find((x) => x.peer === n.r2.id)];
    console.log(`measured: relay-1 loss ${bad.loss} rtt ${bad.rtt_ms} ms, relay-2 loss ${good.loss} rtt ${good.rtt_ms} ms`);
    // The policy's last rewards say why: relay-2 scores higher.
    const rewards = n.a.api("/v1/paths").paths.find((p: any) => p.peer === n.b.id).policy.rewards;
    expect(rewards[`relay:${n.r2.id}`]).toBeGreaterThan(rewards[`relay:${n.r1.id}`]);
    // Now relay-2 degrades the same way and relay-1 recovers.
    lossy(net, "r1", 0);
    lossy(net, "r2", 30);
    const t0 = Date.now();
    await waitFor("a → b back on relay-1", () => pathTo(n.a, n.b) === `relay:${n.r1.id}`, 30_000);
    console.log(`path moved to the recovered relay ${Date.now() - t0} ms after the loss moved`);
    lossy(net, "r2", 0);
  });

  test("GET /metrics parses as Prometheus text and has the path and relay series", () => {
    const text = sh(["ip", "netns", "exec", n.a.ns, "curl", "-sf", "http://127.0.0.1:7080/metrics"]);
    const families = parsePrometheus(text) as { name: string; metrics: { labels?: Record<string, string>; value: string }[] }[];
    const by = Object.fromEntries(families.map((f) => [f.name, f]));
    for (const name of ["trellis_path_rtt_ms", "trellis_path_loss_ratio", "trellis_path_chosen", "trellis_path_choices", "trellis_path_goodput_bps", "trellis_relay_load_percent", "trellis_relay_up", "trellis_relay_rtt_ms", "trellis_counter"]) expect(by[name]).toBeDefined();
    expect(families.every((f) => f.name.startsWith("trellis_"))).toBe(true);
    const chosen = by.trellis_path_chosen.metrics.filter((m) => m.labels?.peer === n.b.id && m.value === "1");
    expect(chosen.length).toBe(1);
    expect(by.trellis_relay_up.metrics.map((m) => m.labels?.relay).sort()).toEqual([n.r1.id, n.r2.id].sort());
  });

  test("trellis relays shows both relays and the policy's scores; status says why", () => {
    const out = n.a.cli(["relays", "--config", n.a.configPath]);
    expect(out.code).toBe(0);
    expect(out.out).toContain(n.r1.id.slice(0, 12));
    expect(out.out).toContain(n.r2.id.slice(0, 12));
    expect(out.out).toContain("<- chosen");
    const status = n.a.cli(["status", "--config", n.a.configPath]);
    expect(status.out).toContain("why each path:");
    expect(status.out).toMatch(/policy \(discounted UCB, round \d+\)/);
  });
});
