// One name per node, one certificate per invite: what a member decides when certificates collide.
import { describe, expect, test } from "bun:test";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { issueCertificate, type Membership } from "./certificate.ts";
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

describe("one invite, one certificate: every member settles on the same one (issue 14)", () => {
  // Attack: a copy of the token redeemed offline by another node. Before, each member kept whichever
  // certificate it met first, so members that met them in different orders disagreed and the copy
  // won wherever it came first. Now the certificate valid from earlier wins everywhere (`trellis
  // join` signs from the grant's issue time, the earliest start a member accepts, so a copy can only
  // tie it); a tie keeps the first seen.
  test("the earlier certificate from an invite wins in whatever order a member meets the two", () => {
    const inv = invite(46, now - 3600);
    const honest = inv(alice, "printer", now - 3600 - 600); // as `trellis join` signs it: from issuedAt - 600
    const copy = inv(mallory, "mallory", now - 60); // redeemed later from a copied token
    for (const order of [[alice, mallory], [mallory, alice]]) {
      const { networks, dir, logs } = member();
      const lost: NodeId[] = [];
      networks.onInviteLost = (loser, winner) => lost.push(loser, winner);
      for (const id of order) networks.check(id, b64(id === alice ? honest : copy));
      expect(networks.check(alice, b64(honest))).toMatchObject({ membership: { nodeId: alice } });
      expect(networks.check(mallory, b64(copy))).toContain("one invite, one certificate");
      expect(networks.nameHolder(root.id, "printer")).toBe(alice);
      expect(networks.nameHolder(root.id, "mallory")).toBeUndefined(); // the loser's name went with its certificate
      if (order[0] === mallory) {
        expect(lost).toEqual([mallory, alice]);
        expect(logs.join("\n")).toContain(`node ${mallory} and node ${alice} show certificates from one invite`);
      } else expect(lost).toEqual([]);
      // Remembered across a restart, like the rest of the registry.
      expect(new Networks(dir, self).check(mallory, b64(copy))).toContain("one invite, one certificate");
      rmSync(dir, { recursive: true });
    }
  });

  test("a copy that ties the first one (same start) does not displace it; an undated (version 1) grant never displaces", () => {
    const { networks, dir } = member();
    const inv = invite(47, now - 3600);
    expect(typeof networks.check(alice, b64(inv(alice, "cam", now - 4200)))).toBe("object");
    expect(networks.check(mallory, b64(inv(mallory, "cam2", now - 4200)))).toContain("one invite, one certificate");
    expect(networks.nameHolder(root.id, "cam")).toBe(alice);
    rmSync(dir, { recursive: true });
    const r = new Registry();
    const v1 = (nodeId: NodeId, notBefore: number): Membership => ({ ...base(nodeId, nodeId.slice(0, 4), notBefore), enrolment: issueEnrolment({ networkId: root.id, publicKey: enrolmentKey(new Uint8Array(32).fill(48)).publicKey, issuedAt: 0, usableUntil: now + 3600, grantsFor: 86400, name: "", ipv4Prefix: 10, tags: [], subnets: [] }, root) });
    expect(r.claim(v1(alice, now - 60), now).ok).toBe(true);
    expect(r.claim(v1(mallory, now - 6000), now).ok).toBe(false);
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
