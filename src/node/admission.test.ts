// Admission: a copy of an invite token cannot take the invite from the member that holds it; the
// certificate a peer shows in the handshake that sets up a session is taken when valid.
import { afterEach, expect, test } from "bun:test";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaults } from "../config/schema.ts";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { issueCertificate } from "../trust/certificate.ts";
import { enrolmentKey, issueEnrolment } from "../trust/enrolment.ts";
import { encodeBundle, Networks } from "../trust/networks.ts";
import { networkIdOf } from "../trust/root.ts";
import { EXIT_GRANT } from "../trust/subnet.ts";
import { encodeClaims, PeerTable } from "../datapath/peers.ts";
import { Admission } from "./admission.ts";
import { Peering, type PeeringOptions } from "./peering.ts";

const k = ml_dsa65.keygen(new Uint8Array(32).fill(2));
const root = { name: "home", id: networkIdOf(k.publicKey), rootPub: k.publicKey, dsaSecret: k.secretKey };
const [self, honest, copy] = [21, 22, 23].map((n) => generateIdentity(new Uint8Array(128).fill(n)).public);
const now = Math.floor(Date.now() / 1000);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Admission of a node that is a member of `root`'s network (its state in a temporary directory). */
function homeMember(): Admission {
  const dir = mkdtempSync(join(tmpdir(), "trellis-admission-"));
  dirs.push(dir);
  Networks.install(dir, self.id, encodeBundle(root, issueCertificate({ networkId: root.id, nodeId: self.id, name: "self", ipv4Prefix: 10, tags: [], subnets: [], notBefore: now - 60, notAfter: now + 86400 }, root)));
  const config = defaults(null);
  config.node.stateDir = dir;
  return new Admission(config, self.id, () => {});
}

test("a copy of an invite, dated earlier, does not evict the member that redeemed it (issue 14)", () => {
  const admission = homeMember();
  const key = enrolmentKey(new Uint8Array(32).fill(49));
  const enrolment = issueEnrolment({ networkId: root.id, publicKey: key.publicKey, issuedAt: now - 3600, usableUntil: now + 3600, grantsFor: 86400, name: "", ipv4Prefix: 10, tags: [], subnets: [] }, root);
  const cert = (id: NodeId, name: string, notBefore: number) => Buffer.from(issueCertificate({ networkId: root.id, nodeId: id, name, ipv4Prefix: 10, tags: [], subnets: [], notBefore, notAfter: notBefore + 86400, enrolment }, key)).toString("base64");

  // The honest node redeemed the invite with a build that signed from its join time less 60 s.
  expect(admission.admit(honest, [cert(honest.id, "printer", now - 60)])).toBe(true);
  // The thief, holding the old token, signs from the earliest start members accept.
  expect(admission.admit(copy, [cert(copy.id, "copy", now - 4200)])).toContain("one invite, one certificate");
  expect(admission.memberships.has(copy.id)).toBe(false);
  expect(admission.memberships.get(honest.id)?.name).toBe("printer");
  expect(admission.admit(honest, [cert(honest.id, "printer", now - 60)])).toBe(true);
});

test("an exit believes a node in two of its networks as a member of the one that granted it the exit right, whatever the certificates' order", () => {
  const dir = mkdtempSync(join(tmpdir(), "trellis-admission-"));
  dirs.push(dir);
  const k2 = ml_dsa65.keygen(new Uint8Array(32).fill(3));
  const other = { name: "work", id: networkIdOf(k2.publicKey), rootPub: k2.publicKey, dsaSecret: k2.secretKey };
  const rootCert = (r: typeof root, id: NodeId, name: string, exit = false) =>
    issueCertificate({ networkId: r.id, nodeId: id, name, ipv4Prefix: 10, tags: [], subnets: exit ? EXIT_GRANT : [], notBefore: now - 60, notAfter: now + 86400 }, r);
  Networks.install(dir, self.id, encodeBundle(root, rootCert(root, self.id, "self", true))); // home granted us --exit
  Networks.install(dir, self.id, encodeBundle(other, rootCert(other, self.id, "self"))); // work did not
  const b64 = (c: Uint8Array) => Buffer.from(c).toString("base64");
  const both = [b64(rootCert(other, honest.id, "laptop")), b64(rootCert(root, honest.id, "laptop"))];
  for (const certs of [both, [...both].reverse()]) {
    const config = defaults(null);
    config.node.stateDir = dir;
    config.routes.exit = true;
    const admission = new Admission(config, self.id, () => {});
    expect(admission.admit(honest, certs)).toBe(true);
    expect(admission.memberships.get(honest.id)?.networkId).toBe(root.id);
  }
});

// Seen in CI (trust.test.ts, 1 run in 5): a member renewed its certificate (a new name), and a peer that
// restarted and started the handshake itself kept the old name: it held the old certificate (a relay's
// copy) and took nothing from the response, whose claims the session layer does not check.
test("the certificate in the handshake that set up a session replaces an older one held for the peer; a bad one changes nothing", () => {
  const admission = homeMember();
  const peers = new PeerTable();
  const peering = new Peering({ self: self.id, relaying: false, admission, peers, sessions: { learn: () => {} }, overlay: { greet: () => {} }, log: () => {} } as unknown as PeeringOptions);
  const cert = (name: string, notAfter: number, key = root) => Buffer.from(issueCertificate({ networkId: root.id, nodeId: honest.id, name, ipv4: "10.0.0.7", ipv4Prefix: 10, tags: [], subnets: [], notBefore: now - 60, notAfter }, key)).toString("base64");
  expect(admission.admit(honest, [cert("laptop", now + 3600)])).toBe(true); // the relay's copy, from before the renewal

  const k3 = ml_dsa65.keygen(new Uint8Array(32).fill(4));
  const forger = { ...root, rootPub: k3.publicKey, dsaSecret: k3.secretKey }; // same network id, not its root
  peering.established(honest.id, honest, encodeClaims({ name: "forged", ipv4: "10.0.0.9", certs: [cert("forged", now + 7 * 86400, forger)] }));
  expect(peers.get(honest.id)?.name).toBe("laptop");

  peering.established(honest.id, honest, encodeClaims({ name: "whatever", ipv4: "10.0.0.7", certs: [cert("laptop2", now + 7 * 86400)] }));
  expect(peers.get(honest.id)?.name).toBe("laptop2");
  expect(admission.memberships.get(honest.id)?.notAfter).toBe(now + 7 * 86400);
});
