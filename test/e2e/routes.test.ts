// e2e: a router appliance (issue 17). A LAN (a bridge) with a host 192.168.50.10 behind two routers r1
// and r2, each on the WAN behind its own NAT; a member m behind another NAT with `[routes] accept`.
// Rights come from the root (invites with --subnets); m pings and fetches from 192.168.50.10 by its LAN
// address; the router in use loses its LAN side, then dies: traffic moves to the other within 2 s
// (the gap between echo replies is measured); with snat = false a TCP stream survives the move; a
// router stopped cleanly, or killed and restarted, leaves no nftables table or forwarding behind;
// advertising what the certificate does not grant is a config error naming the key.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { BUN, TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";
import { tcpTransfer } from "../lib/transfer.ts";

setDefaultTimeout(180_000);
const root = e2eReady(import.meta.file);
let net: TestNet, dir: string, lanNs: string;
const nodes: Record<string, TestNode> = {};
const LAN_HOST = "192.168.50.10";
const LAN_ADDR: Record<string, string> = { r1: "192.168.50.2", r2: "192.168.50.3" };

const ok = (r: { code: number; out: string; err: string }, what: string) => {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.err}${r.out}`);
  return r.out.trim();
};
const lan = (cmd: string[], allowFail = false) => sh(["ip", "netns", "exec", lanNs, ...cmd], { allowFail });
const inNs = (n: TestNode, cmd: string[], allowFail = false) => sh(["ip", "netns", "exec", n.ns, ...cmd], { allowFail });
const pings = (from: TestNode, addr: string, wait = 20) => / [1-9]\d* received/.test(inNs(from, ["ping", "-c", "1", "-i", "0.5", "-w", String(wait), addr], true));
/** The router m uses for the LAN prefix now (node id), per its status. */
const via = (): string | null => nodes.m.api("/v1/status").routes?.routes?.find((r: any) => r.prefix === "192.168.50.0/24")?.via ?? null;
const nameOf = (id: string | null) => Object.keys(nodes).find((k) => nodes[k].id === id);

/**
 * Echo requests from m to the LAN host every 50 ms while `during` runs; returns the longest gap between
 * two replies (ms) and how many replies came.
 */
async function replyGap(during: () => Promise<void>, settleMs = 3000): Promise<{ gapMs: number; replies: number }> {
  const p = spawn("ip", ["netns", "exec", nodes.m.ns, "ping", "-D", "-n", "-i", "0.05", "-W", "1", LAN_HOST], { stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  p.stdout.on("data", (d) => (out += d));
  await Bun.sleep(1000);
  await during();
  await Bun.sleep(settleMs);
  p.kill("SIGINT");
  await new Promise((r) => p.on("exit", r));
  const times = [...out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Number(m[1]) * 1000);
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
  return { gapMs: Math.round(gap), replies: times.length };
}

/** An HTTP server on the LAN host that answers with the address it sees the request from. */
let http: ReturnType<typeof spawn> | undefined;
const fetchLan = (from: TestNode) => inNs(from, ["curl", "-sf", "--max-time", "10", `http://${LAN_HOST}:8080/`], true).trim();

describe.skipIf(!root)("router appliance: subnet routes with failover on health (namespaces)", () => {
  beforeAll(async () => {
    dir = tempDir("e2e-routes");
    net = new TestNet("routes");
    net.addHost("s");
    for (const h of ["r1", "r2", "m"]) net.addNatHost(h);
    const seedUrl = `http://${net.host("s").ip}:7443`;
    // The LAN: a bridge in its own namespace, holding the LAN host; each router's lan0 plugs into it.
    lanNs = `${net.prefix}-lan`;
    sh(["ip", "netns", "add", lanNs]);
    net.made.push(lanNs);
    lan(["ip", "link", "set", "lo", "up"]);
    lan(["ip", "link", "add", "br0", "type", "bridge"]);
    lan(["ip", "addr", "add", `${LAN_HOST}/24`, "dev", "br0"]);
    lan(["ip", "link", "set", "br0", "up"]);
    for (const r of ["r1", "r2"]) {
      const ns = net.host(r).ns;
      sh(["ip", "-n", ns, "link", "add", "lan0", "type", "veth", "peer", "name", `p-${r}`, "netns", lanNs]);
      lan(["ip", "link", "set", `p-${r}`, "master", "br0"]);
      lan(["ip", "link", "set", `p-${r}`, "up"]);
      sh(["ip", "-n", ns, "addr", "add", `${LAN_ADDR[r]}/24`, "dev", "lan0"]);
      sh(["ip", "-n", ns, "link", "set", "lan0", "up"]);
    }
    const server = `Bun.serve({ port: 8080, hostname: "0.0.0.0", fetch(req, srv) { return new Response("lan host; you are " + srv.requestIP(req)?.address); } });`;
    http = spawn("ip", ["netns", "exec", lanNs, BUN, "-e", server], { stdio: "ignore" });

    const rootDir = join(dir, "root");
    const s = (nodes.s = new TestNode(net, { host: "s", name: "s", relay: true }, dir));
    ok(s.cli(["network", "create", "lab", "--out", rootDir]), "network create");
    const req = ok(s.cli(["join", "--request", "--name", "s", "--state", join(s.dir, "state")]), "join --request");
    ok(s.cli(["join", "--install", ok(s.cli(["sign", req, "--root", rootDir, "--ipv4", "100.64.0.1/24"]), "sign"), "--state", join(s.dir, "state")]), "join --install");
    await s.start();
    const check = `\n[routes]\nadvertise = ["192.168.50.0/24"]\ncheck = "${LAN_HOST}"\n`;
    for (const [h, ip, extra, subnets] of [
      ["r1", "100.64.0.11", check, "192.168.50.0/24"],
      ["r2", "100.64.0.12", check, "192.168.50.0/24"],
      ["m", "100.64.0.20", "\n[routes]\naccept = true\n", ""],
    ]) {
      const n = (nodes[h] = new TestNode(net, { host: h, name: h, seeds: [seedUrl], extra }, dir));
      const token = ok(n.cli(["invite", "--root", rootDir, "--name", h, "--ipv4", `${ip}/24`, "--seed", seedUrl, ...(subnets ? ["--subnets", subnets] : [])]), `invite ${h}`);
      ok(n.cli(["join", token, "--state", join(n.dir, "state")]), `join ${h}`);
    }
    await nodes.r1.start();
    await nodes.r2.start();
  });

  afterAll(async () => {
    http?.kill();
    await teardown(Object.values(nodes), net, dir);
  });

  test("m pings and fetches 192.168.50.10 by its LAN address through a router; only that route is added", async () => {
    const before = inNs(nodes.m, ["ip", "route"]);
    await nodes.m.start();
    await waitFor("m to accept the LAN route", () => via(), 30_000);
    expect(pings(nodes.m, LAN_HOST)).toBe(true);
    const body = await waitFor("HTTP from the LAN host", () => fetchLan(nodes.m));
    const used = nameOf(via())!;
    // SNAT: the LAN host sees the router's LAN address, and needs no route back to the overlay.
    expect(body).toBe(`lan host; you are ${LAN_ADDR[used]}`);
    const after = inNs(nodes.m, ["ip", "route"]);
    const added = after.split("\n").filter((l) => l && !before.includes(l) && !l.includes("100.64.0.0/24"));
    expect(added).toEqual([expect.stringMatching(/^192\.168\.50\.0\/24 dev trellis0/)]);
    // Both routers are found (through the seed) and healthy; status lists them with the one in use.
    const route = await waitFor("m to list both routers, healthy", () => {
      const r = nodes.m.api("/v1/status").routes.routes.find((r: any) => r.prefix === "192.168.50.0/24");
      return r?.routers.filter((x: any) => x.healthy).length === 2 && r;
    });
    expect(route.routers.map((r: any) => r.name).sort()).toEqual(["r1", "r2"]);
    expect([nodes.r1.id, nodes.r2.id]).toContain(route.via);
    const r1 = nodes.r1.api("/v1/status").routes;
    expect(r1.advertise).toEqual([{ prefix: "192.168.50.0/24", device: "lan0" }]);
    expect(r1.healthy).toBe(true);
    // The router's host: forwarding on its TUN and LAN device only, and its own nftables table.
    expect(inNs(nodes.r1, ["sysctl", "-n", "net.ipv4.conf.trellis0.forwarding"]).trim()).toBe("1");
    expect(inNs(nodes.r1, ["sysctl", "-n", "net.ipv4.conf.lan0.forwarding"]).trim()).toBe("1");
    expect(inNs(nodes.r1, ["sysctl", "-n", "net.ipv4.conf.eth0.forwarding"]).trim()).toBe("0");
    expect(inNs(nodes.r1, ["nft", "list", "table", "inet", "trellis_trellis0"])).toContain("masquerade");
  });

  test("the router in use loses its LAN side: it withdraws and traffic moves to the other within 2 s, then back", async () => {
    const first = nameOf(via())!;
    const other = first === "r1" ? "r2" : "r1";
    const { gapMs, replies } = await replyGap(async () => {
      inNs(nodes[first], ["ip", "link", "set", "lan0", "down"]);
      await waitFor("m to move off the router whose LAN is down", () => nameOf(via()) === other, 5000);
    });
    console.log(`LAN failure on ${first} (snat on): longest gap between replies ${gapMs} ms (${replies} replies)`);
    expect(nodes[first].api("/v1/status").routes.healthy).toBe(false);
    expect(gapMs).toBeLessThan(2000);
    expect(fetchLan(nodes.m)).toBe(`lan host; you are ${LAN_ADDR[other]}`);
    inNs(nodes[first], ["ip", "link", "set", "lan0", "up"]);
    await waitFor(`${first} healthy again`, () => nodes[first].api("/v1/status").routes.healthy, 10_000);
    // m stays on the router it uses while that one is healthy; now the other's LAN fails and it moves back.
    const back = await replyGap(async () => {
      inNs(nodes[other], ["ip", "link", "set", "lan0", "down"]);
      await waitFor("m to move back", () => nameOf(via()) === first, 5000);
    });
    console.log(`LAN failure on ${other} (snat on): longest gap ${back.gapMs} ms`);
    expect(back.gapMs).toBeLessThan(2000);
    inNs(nodes[other], ["ip", "link", "set", "lan0", "up"]);
    await waitFor(`${other} healthy again`, () => nodes[other].api("/v1/status").routes.healthy, 10_000);
  });

  test("the router in use dies: traffic moves within 2 s; restarted, it undoes what the crash left", async () => {
    const first = nameOf(via())!;
    const other = first === "r1" ? "r2" : "r1";
    const { gapMs } = await replyGap(async () => {
      nodes[first].kill();
      await waitFor("m to move off the dead router", () => nameOf(via()) === other, 5000);
    });
    console.log(`router ${first} killed (snat on): longest gap between replies ${gapMs} ms`);
    expect(gapMs).toBeLessThan(2000);
    // The crash left its table and forwarding behind; the next start undoes them first.
    expect(inNs(nodes[first], ["nft", "list", "tables"])).toContain("trellis_trellis0");
    await Bun.sleep(300);
    await nodes[first].start();
    await waitFor(`${first} says it undid the crash's leftovers`, () => nodes[first].logs().includes("undoing what the last run left"));
    await waitFor(`m to see ${first} healthy again`, () => nodes.m.api("/v1/status").routes.routes[0]?.routers.filter((r: any) => r.healthy).length === 2, 30_000);
  });

  test("snat = false: the LAN host sees the overlay source, and a TCP stream survives the router's death", async () => {
    for (const r of ["r1", "r2"]) {
      await nodes[r].stop();
      nodes[r].spec.extra = nodes[r].spec.extra!.replace("[routes]\n", "[routes]\nsnat = false\n");
      nodes[r].writeConfig();
      // What keepalived/VRRP would do on a real LAN: the LAN's way back to the overlay goes to a live router.
      tc(r, true);
    }
    await nodes.r1.start();
    await nodes.r2.start();
    await waitFor("both routers healthy at m", () => nodes.m.api("/v1/status").routes.routes[0]?.routers.filter((r: any) => r.healthy).length === 2, 30_000);
    const first = nameOf(via())!;
    const other = first === "r1" ? "r2" : "r1";
    lan(["ip", "route", "replace", "100.64.0.0/24", "via", LAN_ADDR[first]]);
    expect(await waitFor("HTTP without SNAT", () => fetchLan(nodes.m))).toBe("lan host; you are 100.64.0.20");
    expect(inNs(nodes[first], ["nft", "list", "tables"])).not.toContain("trellis_");
    const lanHost = { ns: lanNs } as TestNode;
    let moved = 0;
    const t0 = Date.now();
    let done: Awaited<ReturnType<typeof tcpTransfer>> | undefined;
    // Echo replies are timed too (the same measure as with SNAT), while the stream flows.
    const { gapMs } = await replyGap(async () => {
      done = await tcpTransfer(nodes.m, lanHost, LAN_HOST, 9000, 6_000_000, async () => {
        await Bun.sleep(1500);
        const killedAt = Date.now();
        nodes[first].kill();
        lan(["ip", "route", "replace", "100.64.0.0/24", "via", LAN_ADDR[other]]);
        await waitFor("m to move off the dead router", () => nameOf(via()) === other, 5000);
        moved = Date.now() - killedAt;
      });
    }, 1000);
    const { sent, recv } = done!;
    console.log(`router ${first} killed (snat off): m moved in ${moved} ms; longest gap between echo replies ${gapMs} ms; the TCP stream survived: ${sent.bytes} bytes in ${Date.now() - t0} ms`);
    expect(recv).toEqual(sent);
    expect(moved).toBeLessThan(2000);
    for (const r of ["r1", "r2"]) tc(r, false);
  });

  test("snat = false: the router in use loses its LAN side, then dies; traffic moves within 2 s each time", async () => {
    const dead = [nodes.r1, nodes.r2].find((n) => !n.running);
    if (dead) await dead.start(); // killed in the test before
    await waitFor("both routers healthy at m", () => nodes.m.api("/v1/status").routes.routes[0]?.routers.filter((r: any) => r.healthy).length === 2, 30_000);
    const cur = nameOf(via())!;
    const other = cur === "r1" ? "r2" : "r1";
    lan(["ip", "route", "replace", "100.64.0.0/24", "via", LAN_ADDR[cur]]);
    expect(await waitFor("HTTP without SNAT", () => fetchLan(nodes.m))).toBe("lan host; you are 100.64.0.20");
    const { gapMs, replies } = await replyGap(async () => {
      inNs(nodes[cur], ["ip", "link", "set", "lan0", "down"]);
      lan(["ip", "route", "replace", "100.64.0.0/24", "via", LAN_ADDR[other]]);
      await waitFor("m to move off the router whose LAN is down", () => nameOf(via()) === other, 5000);
    });
    console.log(`LAN failure on ${cur} (snat off): longest gap between replies ${gapMs} ms (${replies} replies)`);
    expect(gapMs).toBeLessThan(2000);
    inNs(nodes[cur], ["ip", "link", "set", "lan0", "up"]);
    await waitFor(`${cur} healthy again`, () => nodes[cur].api("/v1/status").routes.healthy, 10_000);
    await waitFor(`m to see ${cur} healthy again`, () => nodes.m.api("/v1/status").routes.routes[0]?.routers.filter((r: any) => r.healthy).length === 2, 10_000);
    // The router in use dies, no stream running (the figure beside the one with SNAT). Whichever it is
    // now: on a loaded machine a late advert may have moved m already.
    const inUse = nameOf(via())!;
    const left = inUse === "r1" ? "r2" : "r1";
    lan(["ip", "route", "replace", "100.64.0.0/24", "via", LAN_ADDR[inUse]]);
    const dies = await replyGap(async () => {
      nodes[inUse].kill();
      lan(["ip", "route", "replace", "100.64.0.0/24", "via", LAN_ADDR[left]]);
      await waitFor("m to move off the dead router", () => nameOf(via()) === left, 5000);
    });
    console.log(`router ${inUse} killed (snat off, idle): longest gap between replies ${dies.gapMs} ms (${dies.replies} replies)`);
    expect(dies.gapMs).toBeLessThan(2000);
  });

  test("a router stopped cleanly leaves the host as it found it", async () => {
    // The router in use was killed in the test before (a crash leaves its changes until its next
    // start): stop the one still running, whichever it is.
    const r = [nodes.r1, nodes.r2].find((n) => n.running);
    if (!r) throw new Error("no router still running to stop cleanly");
    await r.stop();
    expect(inNs(r, ["nft", "list", "tables"])).not.toContain("trellis_");
    expect(inNs(r, ["sysctl", "-n", "net.ipv4.conf.lan0.forwarding"]).trim()).toBe("0");
    expect(r.logs()).toContain("host: undone");
  });

  test("advertising beyond the certificate's grant is a config error naming the key", async () => {
    const r = nodes.r2;
    r.spec.extra = `\n[routes]\nadvertise = ["192.168.60.0/24"]\n`;
    r.writeConfig();
    const out = r.cli(["up", "--config", r.configPath]);
    expect(out.code).not.toBe(0);
    expect(out.err).toContain("[routes] advertise: 192.168.60.0/24 is not granted");
  });
});

/** A slow LAN side (tbf on each router's lan0) so that a TCP transfer is still running when a router dies. */
function tc(r: string, on: boolean): void {
  const ns = net.host(r).ns;
  if (on) sh(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", "lan0", "root", "tbf", "rate", "16mbit", "burst", "32kb", "latency", "50ms"], { allowFail: true });
  else sh(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "lan0", "root"], { allowFail: true });
}
