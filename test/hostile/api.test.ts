// Hostile local users and web pages against a real node in a namespace: DNS rebinding, cross-site
// POSTs, pings for made-up ids, reading the API token as another user; and the node itself runs
// without uid 0 or any capability once its TUN is open, and still works (traffic, revocation, reload).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { chownSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { isRoot, sh, TestNet } from "../lib/netns.ts";
import { enrol } from "../lib/members.ts";
import { TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";
import { createNetwork, type Root } from "../../src/trust/root.ts";
import { issuePolicy } from "../../src/trust/policy.ts";
import { credentials } from "../../src/node/privileges.ts";

setDefaultTimeout(90_000);
const root = isRoot();
let net: TestNet, dir: string;
let seed: TestNode, a: TestNode, b: TestNode, c: TestNode, home: Root;

const API = "http://127.0.0.1:7080";
/** curl inside a's namespace; returns "STATUS BODY". */
function curl(args: string[]): { status: number; body: string } {
  const out = sh(["ip", "netns", "exec", a.ns, "curl", "-s", "--max-time", "10", "-w", "\n%{http_code}", ...args], { allowFail: true });
  const i = out.lastIndexOf("\n");
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}
function chownTree(p: string, uid: number, gid: number): void {
  chownSync(p, uid, gid);
  if (statSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(join(p, e), uid, gid);
}
const session = (x: TestNode, y: TestNode) => x.api("/v1/status").peers?.find((p: any) => p.id === y.id)?.session === true;

describe.skipIf(!root)("hostile local API users, and a node without root (namespaces)", () => {
  beforeAll(async () => {
    dir = tempDir("hostile-api");
    net = new TestNet("hapi");
    for (const h of ["seed", "a", "b", "c"]) net.addHost(h);
    const seeds = [`http://${net.host("seed").ip}:7443`];
    home = createNetwork("home", join(dir, "root-home"));
    seed = new TestNode(net, { host: "seed", name: "seed", relay: true }, dir);
    a = new TestNode(net, { host: "a", name: "alpha", seeds }, dir);
    b = new TestNode(net, { host: "b", name: "bravo", seeds }, dir);
    // members of one network with no allow-list: before the fix a ping for any id made a peer and a link attempt
    enrol(seed, home, "100.64.1.10"); // a member relay: members link to it and it answers lookups by id
    enrol(a, home, "100.64.1.1");
    enrol(b, home, "100.64.1.2");
    // c starts the way the systemd unit starts it: never root, a plain user with two ambient capabilities
    // (this machine's /dev/net/tun is 0600 where distributions ship 0666: c sees a 0666 node of the same
    // device in a mount namespace of its own; the host's /dev is left alone)
    const tun = join(dir, "tun");
    sh(["mknod", "-m", "666", tun, "c", "10", "200"]);
    const ownTun = ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /dev/net/tun && exec "$@"', tun];
    c = new TestNode(net, { host: "c", name: "charlie", seeds, wrap: [...ownTun, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--bounding-set=-all,+net_admin,+net_bind_service", "--inh-caps=-all,+net_admin,+net_bind_service", "--ambient-caps=+net_admin,+net_bind_service", "--"] }, dir);
    enrol(c, home, "100.64.1.3");
    chownTree(join(c.dir, "state"), 65534, 65534); // StateDirectory= does this for the unit
    await seed.start();
    await Promise.all([a.start(), b.start(), c.start()]);
  });

  afterAll(async () => {
    await teardown([a, b, c, seed], net, dir);
  });

  test("DNS rebinding: a request under another Host is refused (421), reads included", () => {
    for (const host of ["evil.example:7080", "attacker.test", "127.0.0.1.nip.io:7080"]) {
      const r = curl(["-H", `Host: ${host}`, `${API}/v1/status`]);
      expect(r.status).toBe(421);
      expect(r.body).not.toContain(a.id);
    }
    expect(curl([`${API}/v1/status`]).status).toBe(200);
  });

  test("cross-site text/plain POSTs and token-less POSTs change nothing", () => {
    const before = a.api("/v1/paths").weights;
    const body = JSON.stringify({ latency: 1, loss: 0, goodput: 0 });
    const page = curl(["-X", "POST", "-H", "Content-Type: text/plain", "-H", "Origin: http://evil.example", "-H", "Sec-Fetch-Site: cross-site", "--data-binary", body, `${API}/v1/paths/weights`]);
    expect(page.status).toBe(403);
    const local = curl(["-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", body, `${API}/v1/paths/weights`]);
    expect(local.status).toBe(401);
    const guessed = curl(["-X", "POST", "-H", `Authorization: Bearer ${randomBytes(32).toString("hex")}`, "--data-binary", body, `${API}/v1/paths/weights`]);
    expect(guessed.status).toBe(401);
    expect(a.api("/v1/paths").weights).toEqual(before);
    // the owner (root, or the node's user) has the token and can
    const owner = curl(["-X", "POST", "-H", `Authorization: Bearer ${a.apiToken()}`, "--data-binary", body, `${API}/v1/paths/weights`]);
    expect(owner.status).toBe(200);
    expect(a.api("/v1/paths").weights).toEqual({ latency: 1, loss: 0, goodput: 0 });
  });

  test("another local user cannot read the token (0600, the node's user)", () => {
    const path = join(a.dir, "state", "api.token");
    const r = Bun.spawnSync(["setpriv", "--reuid", "4242", "--regid", "4242", "--clear-groups", "cat", path]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.toString()).toContain("Permission denied");
    // and the CLI without it gets a clear refusal for actions
    const cli = Bun.spawnSync(["ip", "netns", "exec", a.ns, "setpriv", "--reuid", "4242", "--regid", "4242", "--clear-groups", "env", "TRELLIS_API_TOKEN=", process.execPath, join(import.meta.dir, "../../src/cli/main.ts"), "ping", b.id, "--count", "1", "--config", a.configPath]);
    expect(cli.exitCode).not.toBe(0);
    expect(cli.stderr.toString()).toContain("needs the API token");
  });

  test("pings for made-up ids: refused without the token; with it, no peer and no link attempt; rate-limited", async () => {
    const peers0 = a.api("/v1/status").peers.length;
    for (let i = 0; i < 5; i++) expect(curl([`${API}/v1/ping?node=${randomBytes(16).toString("hex")}&timeout_ms=200`]).status).toBe(401);
    await Bun.sleep(300);
    expect(a.api("/v1/status").peers.length).toBe(peers0);
    // with the token: a made-up id has no signed record at our relay, so no peer and no link attempt
    await waitFor("a linked to the relay", () => (a.api("/v1/status").links ?? []).some((l: any) => l.relay && l.alive), 30_000);
    const peers1 = a.api("/v1/status").peers.length;
    const links1 = (a.api("/v1/status").links ?? []).length;
    const auth = ["-H", `Authorization: Bearer ${a.apiToken()}`];
    const made = Array.from({ length: 6 }, () => randomBytes(16).toString("hex"));
    for (const id of made) expect(curl([...auth, `${API}/v1/ping?node=${id}&timeout_ms=300`]).status).toBe(404);
    await Bun.sleep(500);
    expect(a.api("/v1/status").peers.length).toBe(peers1);
    expect((a.api("/v1/status").links ?? []).length).toBe(links1);
    for (const id of made) expect(a.logs()).not.toContain(`offer to ${id}`);
    // a burst is cut off by the rate limit (a name no peer has: answered at once)
    const t0 = performance.now();
    const burst = sh(["ip", "netns", "exec", a.ns, "sh", "-c", `for i in $(seq 60); do curl -s -o /dev/null -w '%{http_code}\\n' -H 'Authorization: Bearer ${a.apiToken()}' '${API}/v1/ping?node=nosuchname&timeout_ms=1' & done; wait`]);
    const codes = burst.split("\n").filter(Boolean);
    const seconds = (performance.now() - t0) / 1000;
    // a burst of 20, then 10 a second, however slowly this machine ran the 60 requests
    expect(codes.length).toBe(60);
    expect(codes.filter((c) => c !== "429").length).toBeLessThanOrEqual(21 + Math.ceil(seconds * 10));
    if (seconds < 3) expect(codes.filter((c) => c === "429").length).toBeGreaterThan(0);
  });

  test("the CLI pings with the token: a member not met yet is refused by id (its record at the relay notwithstanding), found by name, then linked", async () => {
    await Bun.sleep(2500); // let the ping bucket refill after the burst
    const onRelay = (x: TestNode) => (x.api("/v1/status").links ?? []).some((l: any) => l.relay && l.alive);
    await waitFor("a and b attached to the relay", () => onRelay(a) && onRelay(b), 30_000);
    // By id: a peer a does not know is refused at once (no record lookup, no peer, no link attempt).
    const byId = a.cli(["ping", b.id, "--count", "1", "--timeout", "1", "--config", a.configPath]);
    expect(byId.err).not.toContain("needs the API token");
    expect(byId.err).toContain("is not a peer this node knows");
    expect(a.api("/v1/status").peers.some((p: any) => p.id === b.id)).toBe(false);
    expect(a.logs()).not.toContain(`offer to ${b.id}`);
    // By name: a member lookup (b's certificate, checked against the root), then a link and a session.
    await waitFor("a finds bravo by name", () => a.cli(["ping", "bravo", "--count", "1", "--timeout", "1", "--config", a.configPath]).code === 0, 30_000);
    await waitFor("a ↔ b session", () => session(a, b), 30_000);
    expect(a.cli(["ping", b.id, "--count", "1", "--timeout", "2", "--config", a.configPath]).code).toBe(0); // known now
  });

  test("the running node has no uid 0 and no capability in any thread, and still carries traffic", async () => {
    for (const n of [a, b, seed]) {
      const pid = n.pid!;
      const tasks = readdirSync(`/proc/${pid}/task`);
      expect(tasks.length).toBeGreaterThan(1);
      for (const t of tasks) {
        const c = credentials(`/proc/${pid}/task/${t}/status`);
        expect(c.uids).toEqual([65534, 65534, 65534, 65534]);
        expect(c.gids.includes(0)).toBe(false);
        expect(c.capEff).toBe(0n);
        expect(c.capPrm).toBe(0n);
        expect(c.capAmb).toBe(0n);
      }
      expect(credentials(`/proc/${pid}/status`).noNewPrivs).toBe(true);
      expect(n.logs()).toContain("running as nobody");
    }
    await waitFor("a ↔ b session", () => session(a, b), 30_000);
    expect(/[1-9]\d* received/.test(sh(["ip", "netns", "exec", a.ns, "ping", "-c", "2", "-i", "0.2", "-W", "2", "100.64.1.2"], { allowFail: true }))).toBe(true);
  });

  test("systemd mode: a node started as a plain user with ambient CAP_NET_ADMIN opens its TUN and carries traffic", async () => {
    const pid = c.pid!;
    const st = credentials(`/proc/${pid}/status`);
    expect(st.uids).toEqual([65534, 65534, 65534, 65534]);
    expect(st.capEff).toBe((1n << 12n) | (1n << 10n)); // CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and nothing else
    expect(c.logs()).not.toContain("running as root");
    await waitFor("c attached to the relay", () => (c.api("/v1/status").links ?? []).some((l: any) => l.relay && l.alive), 30_000);
    await waitFor("c finds alpha by name", () => c.cli(["ping", "alpha", "--count", "1", "--timeout", "1", "--config", c.configPath]).code === 0, 30_000);
    await waitFor("c ↔ a session", () => session(c, a), 30_000);
    await waitFor("c → a over the tunnel", () => /[1-9]\d* received/.test(sh(["ip", "netns", "exec", c.ns, "ping", "-c", "1", "-W", "2", "100.64.1.1"], { allowFail: true })), 10_000);
  });

  test("after the drop: reload, a policy write to the state dir, a clean stop that removes the TUN", async () => {
    // a policy handed to the node is kept in its state directory, which the node's user now owns
    const rec = Buffer.from(issuePolicy({ networkId: home.id, version: 1, rules: [{ from: "laptop", to: "server" }] }, home)).toString("base64");
    expect(a.apiPost("/v1/policy", rec)).toEqual({ version: 1 });
    expect(readFileSync(join(a.dir, "state", "networks", home.id, "policy.rec"), "utf8").trim()).toBe(rec);
    a.signal("SIGHUP");
    await waitFor("a reloads", () => a.logs().includes("SIGHUP: reloaded"), 10_000);
    expect(a.logs()).not.toContain("config not reloaded");
    expect(await b.stop()).toBe(0);
    expect(sh(["ip", "netns", "exec", b.ns, "ip", "link", "show", "trellis0"], { allowFail: true })).toBe("");
    expect(readFileSync(join(a.dir, "state", "api.token"), "utf8").trim()).toMatch(/^[0-9a-f]{64}$/);
  });
});
