// Hostile members (issue 14, 1 and 5), real nodes in namespaces: a copied invite token used a second
// time offline (after the original; and long after, dated the earliest start members accept, to evict
// the node that redeemed it), an invite that grants itself every address, and a second node taking a
// member's name.
// Each certificate below is made the way the attacker would: with the invite's enrolment key, offline,
// never asking the seed. The victim must refuse each and say why; DNS keeps answering the real holder.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { e2eReady, TestNet } from "../lib/netns.ts";
import { BUN, TestNode, teardown, tempDir, waitFor } from "../lib/nodes.ts";
import { loadIdentity } from "../../src/identity/identity.ts";
import { createNetwork, encodeNetworkInfo, type Root } from "../../src/trust/root.ts";
import { issueCertificate, type Membership } from "../../src/trust/certificate.ts";
import { enrolmentKey, issueEnrolment } from "../../src/trust/enrolment.ts";
import { encodeBundle, Networks } from "../../src/trust/networks.ts";

setDefaultTimeout(120_000);
const root = e2eReady(import.meta.file);
let net: TestNet, dir: string, home: Root;
const nodes: Record<string, TestNode> = {};
const now = Math.floor(Date.now() / 1000);

/** An open-name invite as `trellis invite` makes it: the enrolment key and the root-signed grant. */
function invite(seedByte: number, ipv4: string) {
  const key = enrolmentKey(new Uint8Array(32).fill(seedByte));
  const enrolment = issueEnrolment({ networkId: home.id, publicKey: key.publicKey, issuedAt: now - 60, usableUntil: now + 3600, grantsFor: 86400, name: "", ipv4, ipv4Prefix: 24, tags: [], subnets: [] }, home);
  return { key, enrolment };
}

/** Sign n's certificate with an invite's key and write it into n's state dir (no seed involved). */
function enrolWith(n: TestNode, inv: ReturnType<typeof invite>, m: Partial<Membership> & { name: string; ipv4: string }) {
  const id = loadIdentity(join(n.dir, "state")).public.id;
  const cert = issueCertificate({ networkId: home.id, nodeId: id, ipv4Prefix: 24, tags: [], subnets: [], notBefore: now - 30, notAfter: now + 86000, enrolment: inv.enrolment, ...m }, inv.key);
  const d = join(n.dir, "state", "networks", home.id);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, "network.json"), encodeNetworkInfo(home));
  writeFileSync(join(d, "member.cert"), Buffer.from(cert).toString("base64"));
}

const session = (x: TestNode, y: TestNode) => x.api("/v1/status").peers?.find((p: any) => p.id === y.id)?.session === true;
const reach = (from: TestNode, to: TestNode) => from.cli(["ping", to.id, "--count", "1", "--timeout", "1", "--config", from.configPath]);

describe.skipIf(!root)("hostile members: invites and names (namespaces)", () => {
  beforeAll(async () => {
    dir = tempDir("hostile-invite");
    net = new TestNet("hinv");
    for (const h of ["seed", "v", "h", "m", "n", "s", "c", "o"]) net.addHost(h);
    const seeds = [`http://${net.host("seed").ip}:7443`];
    home = createNetwork("home", join(dir, "root-home"));
    nodes.seed = new TestNode(net, { host: "seed", name: "seed", relay: true }, dir);
    for (const h of ["v", "h", "m", "n", "s", "c", "o"]) nodes[h] = new TestNode(net, { host: h, name: `node-${h}`, seeds }, dir);
    // v: the victim, root-signed. h: the honest joiner of invite 1.
    const vid = loadIdentity(join(nodes.v.dir, "state")).public.id;
    // Everyone else knows v's id (the seed is in no network: no member relay to look v up through, and
    // `trellis ping ID` takes only peers a node knows): v is allow-listed on their side, never theirs on v's.
    // A node links to its allow-listed peers as it starts: m and n (a copy of h's invite, h's name) start
    // only once h got in, as before they only reached v when asked to.
    for (const h of ["h", "m", "n", "s", "c", "o"]) {
      nodes[h].spec.allow = [vid];
      nodes[h].writeConfig();
    }
    Networks.install(join(nodes.v.dir, "state"), vid, encodeBundle(home, issueCertificate({ networkId: home.id, nodeId: vid, name: "victim", ipv4: "100.64.7.1", ipv4Prefix: 24, tags: [], subnets: [], notBefore: now - 60, notAfter: now + 86400 }, home)));
    const one = invite(61, "100.64.7.2");
    enrolWith(nodes.h, one, { name: "printer", ipv4: "100.64.7.2" });
    // m: a copy of invite 1's token, used again offline for another node.
    enrolWith(nodes.m, one, { name: "mallory", ipv4: "100.64.7.2" });
    // n: its own open-name invite, taking the name the honest joiner holds.
    enrolWith(nodes.n, invite(62, "100.64.7.4"), { name: "printer", ipv4: "100.64.7.4" });
    // s: an invite that grants no subnets, signed into a certificate that lists every address.
    enrolWith(nodes.s, invite(63, "100.64.7.5"), { name: "router", ipv4: "100.64.7.5", subnets: [{ family: 4, address: "0.0.0.0", prefix: 0 }, { family: 6, address: "::", prefix: 0 }] });
    // o and c (started by the last test): invite 4 redeemed by o as builds before 158c7d6 signed (from
    // its join less 60 s), and a copy of its token signed by the thief c from the earliest start members
    // accept (the grant's issue time less 600 s), so "valid from earlier" than o's.
    const four = invite(64, "100.64.7.6");
    enrolWith(nodes.o, four, { name: "camera", ipv4: "100.64.7.6", notBefore: now - 30 });
    enrolWith(nodes.c, four, { name: "copy", ipv4: "100.64.7.6", notBefore: now - 60 - 600 });
    await nodes.seed.start();
    await Promise.all(["v", "h", "s"].map((h) => nodes[h].start()));
  });

  afterAll(async () => {
    await teardown(Object.values(nodes), net, dir);
  });

  test("the honest joiner gets in", async () => {
    // Ask again until the link is up (a loaded machine can take a while).
    await waitFor("h ↔ v session", () => session(nodes.h, nodes.v) || (reach(nodes.h, nodes.v), false), 40000);
    expect(nodes.v.api("/v1/status").peers.find((p: any) => p.id === nodes.h.id)).toMatchObject({ name: "printer", ipv4: "100.64.7.2" });
  });

  test("a second certificate from the same invite and a stolen name are refused, and the log says why", async () => {
    await Promise.all(["m", "n"].map((h) => nodes[h].start()));
    await waitFor("v logs both refusals", () => {
      for (const h of ["m", "n"]) reach(nodes[h], nodes.v);
      const log = nodes.v.logs();
      return log.includes(`node ${nodes.m.id} shows a certificate from an invite node ${nodes.h.id} already used`) && log.includes(`node ${nodes.n.id} claims the name printer, which node ${nodes.h.id} holds`);
    }, 40000);
    for (const h of ["m", "n"]) expect(session(nodes.v, nodes[h])).toBe(false);
    // DNS keeps answering printer.home with the honest joiner's address, not the newcomer's.
    const q = Uint8Array.from([0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, ...Buffer.from("printer"), 4, ...Buffer.from("home"), 0, 0, 1, 0, 1]);
    const script = `const s = await Bun.udpSocket({ socket: { data(_s, d) { console.log(Buffer.from(d).subarray(-4).join(".")); process.exit(0); } } }); s.send(Uint8Array.from([${q.join(",")}]), 53, "100.64.7.1"); setTimeout(() => process.exit(1), 2000);`;
    const r = net.exec("v", [BUN, "-e", script]);
    expect(r.trim()).toBe("100.64.7.2");
  });

  test("a certificate listing subnets its invite does not grant verifies nowhere (not even on its own node)", () => {
    // The victim's check is the same verifyCertificate (unit-tested with the victim's side in
    // src/trust/certificate.test.ts); a patched node could present it, an honest build does not load it.
    expect(nodes.s.logs()).toContain("lists subnet 0.0.0.0/0, which its invite does not grant");
    reach(nodes.s, nodes.v);
    expect(session(nodes.v, nodes.s)).toBe(false);
  });

  test("a copy of a redeemed invite, dated earlier, is refused and does not cut off the node that redeemed it", async () => {
    await nodes.o.start();
    await waitFor("o ↔ v session", () => session(nodes.v, nodes.o) || (reach(nodes.o, nodes.v), false), 40000);
    await nodes.c.start();
    // Before the fix the victim took the copy (valid from earlier) and cut o off ("cutting off").
    await waitFor("c refused", () => (reach(nodes.c, nodes.v), nodes.v.logs().includes(`node ${nodes.c.id} shows a certificate from an invite node ${nodes.o.id} already used`)), 40000);
    await Bun.sleep(2000);
    expect(session(nodes.v, nodes.c)).toBe(false);
    expect(session(nodes.v, nodes.o)).toBe(true);
    expect(nodes.v.logs()).not.toContain(`cutting off ${nodes.o.id}`);
    expect(reach(nodes.o, nodes.v).code).toBe(0);
  });
});
