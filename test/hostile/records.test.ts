// A hostile relay plants discovery records in real nodes in namespaces (issue 14, 2 and 6): its own
// relay record signed with a hint that is not a URL and an expiry a century away, and 100 validly
// signed relay records of identities it made up, passed on as gossip (test/lib/rogue-records.ts
// preloaded into its `trellis up`). What must hold: the bad records are refused (a hint must be a seed
// URL, a record lives at most its lifetime), the made-up relays get no slot at all (records only from
// admitted nodes: a record passed on needs an origin admitted here, or its certificate; before, 8 per
// link were kept, each after a signature check) and no link, and a node that comes later still links
// and gets a session with the victim (before the fixes, one such record made every new link throw
// "Invalid URL" on every node holding it).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { ROOT, TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";

setDefaultTimeout(180_000);
const root = e2eReady(import.meta.file);

const status = (n: TestNode) => n.api("/v1/status");
const counter = (n: TestNode, k: string) => Number(status(n).counters?.[k] ?? 0);
const session = (x: TestNode, y: TestNode) => status(x).peers?.find((p: any) => p.id === y.id)?.session === true;
const relayLink = (x: TestNode, y: TestNode) => status(x).links?.some((l: any) => l.peer === y.id && l.relay && l.alive);

describe.skipIf(!root)("a hostile relay plants discovery records (namespaces)", () => {
  let net: TestNet, dir: string, out: string;
  let seed: TestNode, v: TestNode, m: TestNode, p: TestNode;

  beforeAll(async () => {
    dir = tempDir("hostile-records");
    const shared = join(dir, "records");
    sh(["mkdir", "-p", shared]);
    chmodSync(shared, 0o777); // the attacker writes its report after dropping to nobody
    out = join(shared, "report.json");
    net = new TestNet("hrec");
    for (const h of ["seed", "v", "m", "p"]) net.addHost(h);
    const seeds = [`http://${net.host("seed").ip}:7443`];
    seed = new TestNode(net, { host: "seed", name: "seed", relay: true }, dir);
    v = new TestNode(net, { host: "v", name: "victim", ipv4: "100.64.0.2/24", seeds }, dir);
    m = new TestNode(net, { host: "m", name: "mallory", ipv4: "100.64.0.3/24", seeds, relay: true, preload: join(ROOT, "test/lib/rogue-records.ts") }, dir);
    p = new TestNode(net, { host: "p", name: "later", ipv4: "100.64.0.4/24", seeds }, dir);
    v.spec.allow = [m.id, p.id];
    m.spec.allow = [v.id];
    p.spec.allow = [v.id];
    for (const n of [v, m, p]) n.writeConfig();
    Object.assign(process.env, { RECORDS_STATE: join(m.dir, "state"), RECORDS_GO: join(shared, "go"), RECORDS_OUT: out, RECORDS_FAKE: "100" });
    await seed.start();
    await Promise.all([v.start(), m.start()]);
  });

  afterAll(async () => {
    await teardown([v, m, p, seed], net, dir);
  });

  test("bad hints and endless records are refused, made-up relays take no slot, and a later node still links", async () => {
    await waitFor("v linked to m as a relay", () => relayLink(v, m), 60_000).catch((e) => {
      throw new Error(`${e.message}; v links: ${JSON.stringify(status(v).links?.map((l: any) => [l.peer === m.id ? "m" : l.peer === seed.id ? "seed" : l.peer, l.relay, l.alive]))}`);
    });
    const refusedBefore = counter(v, "route_records_refused");
    const recordsBefore = status(v).relay.records;
    writeFileSync(join(out, "..", "go"), "");
    await waitFor("the attacker's report", () => existsSync(out), 30_000);
    const report = JSON.parse(readFileSync(out, "utf8"));
    expect(report.error).toBeUndefined();
    expect(report.counts.fake_relay_records).toBeGreaterThanOrEqual(100);
    // Signature checks are budgeted per link (20/s): give the 102 records time to be looked at.
    await waitFor("v refused the records with a bad hint", () => v.logs().includes("refused: record hints are not seed URLs"), 30_000);
    await Bun.sleep(8000);
    const held = status(v).relay.records - recordsBefore;
    console.log(`[hostile records] v refused ${counter(v, "route_records_refused") - refusedBefore}, holds ${held} more records (100 made-up relays sent by m, and passed on by the seed)`);
    // None of the made-up relays: their origins are no members (before: 8 per link, after a signature check each).
    expect(held).toBe(0);
    // No link to a made-up relay: the seed has none of them registered, and the victim links only to what it can prove.
    const fake = new Set<string>(report.fakeIds);
    expect(status(v).links.filter((l: any) => fake.has(l.peer))).toEqual([]);
    // A node that comes now still links and gets a session: no record stops link set-up.
    await p.start();
    await waitFor("p ↔ v session", () => session(v, p), 60_000);
    expect(v.logs()).not.toContain("Invalid URL");
    expect(v.running).toBe(true);
  });
});
