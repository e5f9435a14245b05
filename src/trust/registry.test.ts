// One name per node, one certificate per invite: what a member decides when certificates collide.
import { describe, expect, test } from "bun:test";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { decodeCertificate, issueCertificate, type Membership } from "./certificate.ts";
import { enrolmentKey, issueEnrolment } from "./enrolment.ts";
import { encodeBundle, Networks } from "./networks.ts";
import { networkIdOf } from "./root.ts";
import { Registry } from "./registry.ts";

const k = ml_dsa65.keygen(new Uint8Array(32).fill(1));
const root = { name: "home", id: networkIdOf(k.publicKey), rootPub: k.publicKey, dsaSecret: k.secretKey };
const ids = [11, 12, 13, 14].map((n) => generateIdentity(new Uint8Array(128).fill(n)).public.id);
const [self, alice, mallory, carol] = ids;
const now = Math.floor(Date.now() / 1000);
const base = (nodeId: NodeId, name: string, notBefore = now - 60): Membership => ({ networkId: root.id, nodeId, name, ipv4Prefix: 10, tags: [], subnets: [], notBefore, notAfter: notBefore + 86400 });
const rootCert = (nodeId: NodeId, name: string, notBefore?: number) => issueCertificate(base(nodeId, name, notBefore), root);

/** An open-name invite: its key, and a certificate it signs for `nodeId` as `name`. */
function invite(seedByte: number, issuedAt = now - 600) {
  const key = enrolmentKey(new Uint8Array(32).fill(seedByte));
  const enrolment = issueEnrolment({ networkId: root.id, publicKey: key.publicKey, issuedAt, usableUntil: now + 3600, grantsFor: 86400, name: "", ipv4Prefix: 10, tags: [], subnets: [] }, root);
  return (nodeId: NodeId, name: string, notBefore = now - 60) => issueCertificate({ ...base(nodeId, name, notBefore), enrolment }, key);
}

function member(): { networks: Networks; dir: string; logs: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "trellis-registry-"));
  Networks.install(dir, self, encodeBundle(root, rootCert(self, "self")));
  const logs: string[] = [];
  return { networks: new Networks(dir, self, (_l, m) => logs.push(m)), dir, logs };
}
const b64 = (c: Uint8Array) => [Buffer.from(c).toString("base64")];

describe("one invite, one certificate (issue 14, 1/5)", () => {
  // Attack: the token carries the enrolment key; whoever holds it (a copy of the chat message) signs a
  // second certificate offline for its own node. Members that saw the first refuse the second.
  test("a second node's certificate from the same invite is refused, also after a restart", () => {
    const { networks, dir } = member();
    const inv = invite(40);
    const first = networks.check(alice, b64(inv(alice, "printer")));
    expect(typeof first).toBe("object");
    const second = networks.check(mallory, b64(inv(mallory, "mallory")));
    expect(second).toContain("one invite, one certificate");
    expect(typeof networks.check(alice, b64(inv(alice, "printer")))).toBe("object"); // the holder itself still passes
    const again = new Networks(dir, self);
    expect(again.check(mallory, b64(inv(mallory, "mallory")))).toContain("one invite, one certificate");
    rmSync(dir, { recursive: true });
  });
});

describe("one invite, one certificate: a copy of the token never evicts the holder (issue 14)", () => {
  // Attack: whoever holds a copy of an invite token already redeemed (the token carries the enrolment
  // key) signs a certificate for its own node dated the earliest start members accept (the grant's
  // issue time less 600 s). The honest node joined later in the invite's life (or with a build that
  // signed from its join time less 60 s), so the copy is "valid from earlier". With the rule "the
  // earlier one wins" (158c7d6) every member gave the invite to the copy and cut the honest node off;
  // now a member keeps the certificate it holds, whatever the copy's dates.
  test("a member that holds the honest certificate refuses an earlier-dated copy, also after a restart", () => {
    const { networks, dir, logs } = member();
    const inv = invite(46, now - 3600);
    const honest = inv(alice, "printer", now - 660); // joined 3000 s after the invite was made, signed from join - 60
    const copy = inv(mallory, "mallory", now - 3600 - 600); // the earliest start: before the honest one
    expect(networks.check(alice, b64(honest))).toMatchObject({ membership: { nodeId: alice } });
    expect(networks.check(mallory, b64(copy))).toContain(`node ${mallory} shows a certificate from an invite node ${alice} already used (one invite, one certificate)`);
    expect(networks.check(alice, b64(honest))).toMatchObject({ membership: { nodeId: alice } }); // still a member
    expect(networks.nameHolder(root.id, "printer")).toBe(alice);
    expect(networks.nameHolder(root.id, "mallory")).toBeUndefined();
    expect(logs.join("\n")).not.toContain("moves from");
    expect(new Networks(dir, self).check(mallory, b64(copy))).toContain("one invite, one certificate");
    rmSync(dir, { recursive: true });
  });

  test("whichever is met first keeps the invite at that member (the documented limit); revoking it releases the invite", () => {
    const inv = invite(47, now - 3600);
    const honest = inv(alice, "cam", now - 660), copy = inv(mallory, "cam2", now - 4200);
    const { networks, dir } = member();
    expect(typeof networks.check(mallory, b64(copy))).toBe("object");
    expect(networks.check(alice, b64(honest))).toContain("one invite, one certificate");
    rmSync(dir, { recursive: true });
    const r = new Registry();
    const m = (c: Uint8Array) => ({ ...base(alice, "x"), ...decodeCertificate(c).membership });
    expect(r.claim(m(copy), now).ok).toBe(true);
    expect(r.claim(m(honest), now).ok).toBe(false);
    expect(r.claim(m(honest), now, (id) => id === mallory).ok).toBe(true); // the root revoked the copy
    const v1 = (nodeId: NodeId, notBefore: number): Membership => ({ ...base(nodeId, nodeId.slice(0, 4), notBefore), enrolment: issueEnrolment({ networkId: root.id, publicKey: enrolmentKey(new Uint8Array(32).fill(48)).publicKey, issuedAt: 0, usableUntil: now + 3600, grantsFor: 86400, name: "", ipv4Prefix: 10, tags: [], subnets: [] }, root) });
    const u = new Registry();
    expect(u.claim(v1(alice, now - 60), now).ok).toBe(true);
    expect(u.claim(v1(mallory, now - 6000), now).ok).toBe(false);
  });
});

describe("one node per name (issue 14, 5)", () => {
  test("a duplicate name from an invite is refused while the holder is valid; DNS keeps the holder", () => {
    const { networks, dir } = member();
    expect(typeof networks.check(alice, b64(rootCert(alice, "nas")))).toBe("object");
    expect(networks.check(mallory, b64(invite(41)(mallory, "nas")))).toContain("claims the name nas");
    expect(networks.check(mallory, b64(invite(42)(mallory, "self")))).toContain("claims the name self"); // ours either
    expect(networks.nameHolder(root.id, "nas")).toBe(alice);
    expect(networks.nameHolder(root.id, "self")).toBe(self);
    rmSync(dir, { recursive: true });
  });

  test("a root-signed certificate beats an invite-signed one; between equals the earlier one wins", () => {
    const { networks, dir, logs } = member();
    expect(typeof networks.check(mallory, b64(invite(43)(mallory, "nas")))).toBe("object");
    expect(typeof networks.check(alice, b64(rootCert(alice, "nas")))).toBe("object");
    expect(networks.nameHolder(root.id, "nas")).toBe(alice);
    expect(logs.join("\n")).toContain(`name nas moves from node ${mallory} to node ${alice}`);
    expect(networks.check(mallory, b64(invite(43)(mallory, "nas")))).toContain("claims the name nas");
    // Two invite-signed ones: the one valid from earlier wins; a later one does not displace it.
    expect(typeof networks.check(carol, b64(invite(44, now - 7200)(carol, "cam", now - 7000)))).toBe("object");
    expect(typeof networks.check(mallory, b64(invite(45, now - 8000)(mallory, "cam", now - 7900)))).toBe("object");
    expect(networks.nameHolder(root.id, "cam")).toBe(mallory);
    expect(networks.check(carol, b64(invite(44, now - 7200)(carol, "cam", now - 7000)))).toContain("claims the name cam");
    rmSync(dir, { recursive: true });
  });

  test("an expired or revoked holder releases the name", () => {
    const r = new Registry();
    expect(r.claim(base(alice, "nas", now - 90000), now).ok).toBe(true); // expired 3600 s ago
    expect(r.claim(base(mallory, "nas"), now).ok).toBe(true);
    expect(r.claim(base(carol, "nas", now - 100), now, (id) => id === mallory).ok).toBe(true);
    expect(r.holder("nas", now)).toBe(carol);
  });
});
