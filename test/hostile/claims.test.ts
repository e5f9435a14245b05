// Allow-list mode with hostile peers, real nodes in namespaces (issue 14, 9): an allow-listed peer's
// IPv4 address is only its (encrypted, unsigned) claim. Three peers claim what is not theirs — a LAN
// address outside the overlay prefix, the victim's own address, and an address another peer already
// holds — each by its [node] ipv4, as any build can. The victim must refuse each claim and say why,
// keep routing the taken address to its holder, and drop packets a claimant sends from it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { e2eReady, sh, TestNet } from "../lib/netns.ts";
import { TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";

setDefaultTimeout(180_000);
const root = e2eReady(import.meta.file);

const status = (n: TestNode) => n.api("/v1/status");
const peer = (x: TestNode, y: TestNode) => status(x).peers?.find((p: any) => p.id === y.id);
const pings = (from: TestNode, ip: string) => /[1-9]\d* received/.test(sh(["ip", "netns", "exec", from.ns, "ping", "-c", "1", "-W", "2", ip], { allowFail: true }));

describe.skipIf(!root)("allow-listed peers claiming addresses that are not theirs (namespaces)", () => {
  let net: TestNet, dir: string;
  const n: Record<string, TestNode> = {};

  beforeAll(async () => {
    dir = tempDir("hostile-claims");
    net = new TestNet("hclm");
    for (const h of ["seed", "v", "a", "lan", "own", "taken"]) net.addHost(h);
    const seeds = [`http://${net.host("seed").ip}:7443`];
    n.seed = new TestNode(net, { host: "seed", name: "seed", relay: true }, dir);
    n.v = new TestNode(net, { host: "v", name: "victim", ipv4: "100.64.0.2/24", seeds }, dir);
    n.a = new TestNode(net, { host: "a", name: "alpha", ipv4: "100.64.0.1/24", seeds }, dir);
    n.lan = new TestNode(net, { host: "lan", name: "lan", ipv4: "192.168.1.1/24", seeds }, dir); // outside the prefix
    n.own = new TestNode(net, { host: "own", name: "own", ipv4: "100.64.0.2/24", seeds }, dir); // the victim's address
    n.taken = new TestNode(net, { host: "taken", name: "taken", ipv4: "100.64.0.1/24", seeds }, dir); // alpha's
    n.v.spec.allow = ["a", "lan", "own", "taken"].map((h) => n[h].id);
    for (const h of ["a", "lan", "own", "taken"]) n[h].spec.allow = [n.v.id];
    for (const h of ["v", "a", "lan", "own", "taken"]) n[h].writeConfig();
    await n.seed.start();
    await Promise.all([n.v.start(), n.a.start()]);
    await waitFor("v ↔ alpha session, alpha holding 100.64.0.1", () => peer(n.v, n.a)?.session && peer(n.v, n.a)?.ipv4 === "100.64.0.1", 60_000);
    await Promise.all(["lan", "own", "taken"].map((h) => n[h].start()));
  });

  afterAll(async () => {
    await teardown(Object.values(n), net, dir);
  });

  test("each claim is refused with its reason; the address stays with its holder; a claimant's packets from it are dropped", async () => {
    await waitFor("sessions with the three claimants", () => ["lan", "own", "taken"].every((h) => peer(n.v, n[h])?.session), 60_000);
    await waitFor("the three refusals in v's log", () => {
      const log = n.v.logs();
      return log.includes(`peer ${n.lan.id}: claim refused: ipv4 192.168.1.1 is outside the overlay prefix`) && log.includes(`peer ${n.own.id}: claim refused: ipv4 100.64.0.2 is this node's own address`) && log.includes(`peer ${n.taken.id}: claim refused`);
    }, 20_000);
    for (const h of ["lan", "own", "taken"]) expect(peer(n.v, n[h])?.ipv4 ?? null).toBeNull();
    expect(peer(n.v, n.a)?.ipv4).toBe("100.64.0.1");
    // The victim's packets for 100.64.0.1 go to alpha, and alpha answers.
    expect(pings(n.v, "100.64.0.1")).toBe(true);
    // "taken" sends from 100.64.0.1 (its own TUN's address): the key is the route, so the victim drops it.
    const spoofed = () => Number(status(n.v).counters.outside_spoofed ?? 0);
    const before = spoofed();
    expect(pings(n.taken, "100.64.0.2")).toBe(false);
    await waitFor("v counts taken's packet as spoofed", () => spoofed() > before, 10_000);
  });
});
