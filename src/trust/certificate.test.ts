// Membership certificates and revocations: round trips and every rejection path.
import { EXIT_GRANT } from "./subnet.ts";
import { describe, expect, test } from "bun:test";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { generateIdentity } from "../identity/identity.ts";
import { decodeCertificate, issueCertificate, verifyCertificate, type Membership } from "./certificate.ts";
import { TrustError } from "./errors.ts";
import { networkIdOf } from "./root.ts";
import { issueRevocation, verifyRevocation } from "./revocation.ts";
import { decodeBundle, encodeBundle } from "./networks.ts";
import { decodeToken, encodeToken, enrolmentKey, issueEnrolment, verifyEnrolment } from "./enrolment.ts";

const k1 = ml_dsa65.keygen(new Uint8Array(32).fill(1)), k2 = ml_dsa65.keygen(new Uint8Array(32).fill(2));
const root = { name: "home", id: networkIdOf(k1.publicKey), rootPub: k1.publicKey, dsaSecret: k1.secretKey };
const other = { name: "other", id: networkIdOf(k2.publicKey), rootPub: k2.publicKey, dsaSecret: k2.secretKey };
const node = generateIdentity(new Uint8Array(128).fill(7)).public.id;
const stranger = generateIdentity(new Uint8Array(128).fill(8)).public.id;
const now = 1_800_000_000;
const m: Membership = {
  networkId: root.id, nodeId: node, name: "laptop", ipv4: "100.64.0.7", ipv4Prefix: 16, tags: ["dev", "eu"],
  subnets: [{ family: 4, address: "10.9.0.0", prefix: 24 }, { family: 6, address: "fd00:1::", prefix: 64 }], notBefore: now - 10, notAfter: now + 3600,
};
const cert = issueCertificate(m, root);

function code(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    if (e instanceof TrustError) return e.code;
    throw e;
  }
}

describe("membership certificates", () => {
  test("round trip: encoding is deterministic and decodes to what was signed", () => {
    expect(decodeCertificate(cert).membership).toEqual(m);
    expect(verifyCertificate(cert, root.rootPub, root.id, node, now)).toEqual(m);
    expect(encodeBundle(root, cert).length).toBeLessThan(12000);
    expect(decodeBundle(encodeBundle(root, cert)).cert).toEqual(cert);
  });

  test("every rejection path has its own code", () => {
    expect(code(() => verifyCertificate(cert, other.rootPub, other.id, node, now))).toBe("wrong-network");
    expect(code(() => verifyCertificate(cert, other.rootPub, root.id, node, now))).toBe("bad-signature");
    expect(code(() => verifyCertificate(cert, root.rootPub, root.id, stranger, now))).toBe("wrong-node");
    expect(code(() => verifyCertificate(cert, root.rootPub, root.id, node, now + 7200))).toBe("expired");
    expect(code(() => verifyCertificate(cert, root.rootPub, root.id, node, now - 3600))).toBe("not-yet-valid");
    const forged = issueCertificate({ ...m, ipv4: "100.64.0.8" }, other); // right fields, wrong signer
    expect(code(() => verifyCertificate(forged, root.rootPub, root.id, node, now))).toBe("bad-signature");
  });

  test("a flipped bit anywhere is refused; truncations and garbage are malformed, never a crash", () => {
    for (let i = 0; i < cert.length; i += 97) {
      const t = Uint8Array.from(cert);
      t[i] ^= 0x10;
      expect(code(() => verifyCertificate(t, root.rootPub, root.id, node, now))).not.toBe("ok");
    }
    for (const n of [0, 4, 40, cert.length - 1]) expect(code(() => decodeCertificate(cert.subarray(0, n)))).toBe("malformed");
    for (let i = 0; i < 50; i++) expect(code(() => decodeCertificate(crypto.getRandomValues(new Uint8Array(3400 + i))))).toBe("malformed");
    expect(code(() => decodeBundle("trellis-cert1:!!!"))).toBe("malformed");
  });

  test("bad fields are refused at issue time", () => {
    expect(code(() => issueCertificate({ ...m, name: "Bad Name" }, root))).toBe("malformed");
    expect(code(() => issueCertificate({ ...m, ipv4: "300.1.1.1" }, root))).toBe("malformed");
    expect(code(() => issueCertificate({ ...m, tags: ["UPPER"] }, root))).toBe("malformed");
    for (const ipv4Prefix of [0, 33, 1.5]) expect(code(() => issueCertificate({ ...m, ipv4Prefix }, root))).toBe("malformed");
    for (const ipv4Prefix of [1, 32]) expect(code(() => issueCertificate({ ...m, ipv4Prefix }, root))).toBe("ok");
    const tags = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);
    expect(code(() => issueCertificate({ ...m, tags: tags(33) }, root))).toBe("malformed");
    expect(code(() => issueCertificate({ ...m, tags: tags(32) }, root))).toBe("ok");
    const nets = (n: number) => Array.from({ length: n }, (_, i) => ({ family: 4 as const, address: `10.${i}.0.0`, prefix: 16 }));
    expect(code(() => issueCertificate({ ...m, subnets: nets(33) }, root))).toBe("malformed");
    expect(code(() => issueCertificate({ ...m, subnets: nets(32) }, root))).toBe("ok");
    for (const sn of [{ family: 4 as const, address: "10.0.0.0", prefix: 33 }, { family: 6 as const, address: "fd00::", prefix: 129 }, { family: 4 as const, address: "10.0.0.0", prefix: -1 }, { family: 4 as const, address: "fd00::", prefix: 8 }])
      expect(code(() => issueCertificate({ ...m, subnets: [sn] }, root))).toBe("malformed");
    for (const sn of [{ family: 4 as const, address: "0.0.0.0", prefix: 0 }, { family: 6 as const, address: "fd00::", prefix: 128 }])
      expect(code(() => issueCertificate({ ...m, subnets: [sn] }, root))).toBe("ok");
  });

  test("a root-signed certificate with an unknown subnet family or issuer kind is malformed", () => {
    // Patch the encoding, then sign it properly: only the decoder's own checks can refuse it.
    const resign = (patch: (b: Uint8Array) => void) => {
      const c = issueCertificate({ ...m, subnets: [{ family: 6, address: "fd00:1::", prefix: 64 }] }, root);
      const body = Uint8Array.from(c.subarray(0, c.length - 3309));
      patch(body);
      return Uint8Array.from([...body, ...ml_dsa65.sign(body, root.dsaSecret, { context: new TextEncoder().encode("trellis membership v1") })]);
    };
    // The end of the body: ... subnet count (1) | family (1) | prefix (1) | address (16) | issuer (1)
    expect(code(() => verifyCertificate(resign(() => {}), root.rootPub, root.id, node, now))).toBe("ok");
    expect(code(() => verifyCertificate(resign((b) => void (b[b.length - 19] = 5)), root.rootPub, root.id, node, now))).toBe("malformed");
    expect(code(() => verifyCertificate(resign((b) => void (b[b.length - 1] = 2)), root.rootPub, root.id, node, now))).toBe("malformed");
    // A name that is not a label (here "lAptop"), signed anyway: not in canonical form.
    expect(code(() => verifyCertificate(resign((b) => void (b[55] = 0x41)), root.rootPub, root.id, node, now))).toBe("malformed");
    // Trailing bytes after a proper signature.
    const c = issueCertificate(m, root);
    expect(code(() => verifyCertificate(Uint8Array.from([...c, 0]), root.rootPub, root.id, node, now))).toBe("malformed");
  });

  test("the validity window includes both its ends, and not a second more", () => {
    expect(code(() => verifyCertificate(cert, root.rootPub, root.id, node, m.notBefore))).toBe("ok");
    expect(code(() => verifyCertificate(cert, root.rootPub, root.id, node, m.notAfter))).toBe("ok");
    expect(code(() => verifyCertificate(cert, root.rootPub, root.id, node, m.notBefore - 1))).toBe("not-yet-valid");
    expect(code(() => verifyCertificate(cert, root.rootPub, root.id, node, m.notAfter + 1))).toBe("expired");
  });
});

describe("revocations", () => {
  test("verify against the right root and network only", () => {
    const rec = issueRevocation({ networkId: root.id, nodeId: node, time: now, reason: "lost" }, root);
    expect(verifyRevocation(rec, root.rootPub, root.id)).toEqual({ networkId: root.id, nodeId: node, time: now, reason: "lost" });
    expect(code(() => verifyRevocation(rec, other.rootPub, root.id))).toBe("bad-signature");
    expect(code(() => verifyRevocation(rec, root.rootPub, other.id))).toBe("wrong-network");
    const t = Uint8Array.from(rec);
    t[25] ^= 1; // another node id
    expect(code(() => verifyRevocation(t, root.rootPub, root.id))).toBe("bad-signature");
    expect(code(() => verifyRevocation(rec.subarray(0, 100), root.rootPub, root.id))).toBe("malformed");
  });
});

describe("certificates signed through an invite's enrolment key", () => {
  const key = enrolmentKey(new Uint8Array(32).fill(9));
  const grant = { networkId: root.id, publicKey: key.publicKey, issuedAt: now - 100, usableUntil: now + 100, grantsFor: 3600, name: "printer", ipv4: "100.64.2.5", ipv4Prefix: 24, tags: ["iot"], subnets: [] };
  const enrolment = issueEnrolment(grant, root);
  const granted: Membership = { networkId: root.id, nodeId: node, name: "printer", ipv4: "100.64.2.5", ipv4Prefix: 24, tags: ["iot"], subnets: [], notBefore: now, notAfter: now + 3600, enrolment };

  test("the chain verifies to the root", () => {
    const c = issueCertificate(granted, key);
    expect(verifyCertificate(c, root.rootPub, root.id, node, now + 10).name).toBe("printer");
  });

  test("an invite's limits include their ends: made at the last usable second, for exactly what it grants", () => {
    const edge = { ...granted, notBefore: now + 100, notAfter: now + 100 + 3600 + 600 };
    expect(code(() => verifyCertificate(issueCertificate(edge, key), root.rootPub, root.id, node, now + 150))).toBe("ok");
    expect(code(() => verifyCertificate(issueCertificate({ ...edge, notBefore: now + 101 }, key), root.rootPub, root.id, node, now + 150))).toBe("constraint");
    expect(code(() => verifyCertificate(issueCertificate({ ...edge, notAfter: edge.notAfter + 1 }, key), root.rootPub, root.id, node, now + 150))).toBe("constraint");
  });

  test("granting more than the invite allowed, late, or for longer, is refused", () => {
    for (const m of [{ ...granted, tags: ["iot", "admin"] }, { ...granted, ipv4: "100.64.2.6" }, { ...granted, name: "server" }, { ...granted, notBefore: now + 200, notAfter: now + 3800 }, { ...granted, notAfter: now + 90_000 }])
      expect(code(() => verifyCertificate(issueCertificate(m, key), root.rootPub, root.id, node, now + 250))).toBe("constraint");
  });

  test("an enrolment key the root never signed, or another network's enrolment, is refused", () => {
    const rogue = enrolmentKey(new Uint8Array(32).fill(10));
    expect(code(() => verifyCertificate(issueCertificate(granted, rogue), root.rootPub, root.id, node, now + 10))).toBe("bad-signature");
    const foreign = issueEnrolment({ ...grant, networkId: other.id }, other);
    expect(code(() => verifyCertificate(issueCertificate({ ...granted, enrolment: foreign }, key), root.rootPub, root.id, node, now + 10))).toBe("wrong-network");
    // An enrolment naming our network and the rogue's key, signed by another root: the enrolment's
    // own signature is all that stands between the rogue and a membership it signs itself.
    const forged = issueEnrolment({ ...grant, publicKey: rogue.publicKey }, other);
    expect(code(() => verifyCertificate(issueCertificate({ ...granted, enrolment: forged }, rogue), root.rootPub, root.id, node, now + 10))).toBe("bad-signature");
    expect(code(() => verifyEnrolment(forged, root.rootPub, root.id))).toBe("bad-signature");
    const t = Uint8Array.from(enrolment);
    expect(code(() => verifyEnrolment(Uint8Array.from([...t, 0]), root.rootPub, root.id))).toBe("malformed"); // trailing bytes
  });

  // Attack (issue 14, 1): the token holder signs its own certificate and lists any subnets; Outside
  // then takes packets from it with any inner source. A certificate may list only what the root granted.
  test("an invite grants no subnet it does not name: ::/0, 0.0.0.0/0 or a wider prefix are refused", () => {
    for (const subnets of [[{ family: 6 as const, address: "::", prefix: 0 }], [{ family: 4 as const, address: "0.0.0.0", prefix: 0 }], [{ family: 4 as const, address: "100.64.0.0", prefix: 10 }]])
      expect(code(() => verifyCertificate(issueCertificate({ ...granted, subnets }, key), root.rootPub, root.id, node, now + 10))).toBe("constraint");
    const lan = issueEnrolment({ ...grant, subnets: [{ family: 4, address: "10.9.0.0", prefix: 16 }, { family: 6, address: "fd00:9::", prefix: 48 }] }, root);
    const ok = [{ family: 4 as const, address: "10.9.3.0", prefix: 24 }, { family: 6 as const, address: "fd00:9:0:1::", prefix: 64 }];
    expect(verifyCertificate(issueCertificate({ ...granted, enrolment: lan, subnets: ok }, key), root.rootPub, root.id, node, now + 10).subnets).toEqual(ok);
    for (const bad of [{ family: 4 as const, address: "10.8.0.0", prefix: 15 }, { family: 4 as const, address: "10.10.0.0", prefix: 24 }, { family: 6 as const, address: "fd00:8::", prefix: 64 }])
      expect(code(() => verifyCertificate(issueCertificate({ ...granted, enrolment: lan, subnets: [bad] }, key), root.rootPub, root.id, node, now + 10))).toBe("constraint");
  });

  test("the exit right travels as default routes: an invite made with --exit grants them, and only then", () => {
    const exit = issueEnrolment({ ...grant, subnets: EXIT_GRANT }, root);
    expect(verifyCertificate(issueCertificate({ ...granted, enrolment: exit, subnets: EXIT_GRANT }, key), root.rootPub, root.id, node, now + 10).subnets).toEqual(EXIT_GRANT);
    const lanOnly = issueEnrolment({ ...grant, subnets: [{ family: 4, address: "10.9.0.0", prefix: 16 }] }, root);
    expect(code(() => verifyCertificate(issueCertificate({ ...granted, enrolment: lanOnly, subnets: EXIT_GRANT }, key), root.rootPub, root.id, node, now + 10))).toBe("constraint");
  });

  test("a certificate cannot claim to be valid from before its invite was made", () => {
    expect(code(() => verifyCertificate(issueCertificate({ ...granted, notBefore: now - 5000, notAfter: now - 5000 + 3600 }, key), root.rootPub, root.id, node, now + 10))).toBe("constraint");
  });

  test("version 1 grants (no subnets, no issue time) still verify and grant no subnets", () => {
    // TRE1 | network | key | usable until u64 | grants for u32 | name | ipv4 | prefix | tags
    const t = Buffer.alloc(12);
    t.writeBigUInt64BE(BigInt(now + 100));
    t.writeUInt32BE(3600, 8);
    const b = Uint8Array.from([...Buffer.from("TRE1"), ...Buffer.from(root.id, "hex"), ...key.publicKey, ...t, 7, ...Buffer.from("printer"), 100, 64, 2, 5, 24, 1, 3, ...Buffer.from("iot")]);
    const v1 = Uint8Array.from([...b, ...ml_dsa65.sign(b, root.dsaSecret, { context: new TextEncoder().encode("trellis enrolment v1") })]);
    expect(verifyCertificate(issueCertificate({ ...granted, enrolment: v1 }, key), root.rootPub, root.id, node, now + 10).name).toBe("printer");
    expect(code(() => verifyCertificate(issueCertificate({ ...granted, enrolment: v1, subnets: [{ family: 4, address: "0.0.0.0", prefix: 0 }] }, key), root.rootPub, root.id, node, now + 10))).toBe("constraint");
  });
});

describe("invite tokens", () => {
  const token = encodeToken({ networkId: root.id, seed: new Uint8Array(32).fill(3), hash: "ab".repeat(32), expires: now, seeds: ["http://seed:7443"] });
  test("round trip; another prefix, a short or a future-version token, or trailing bytes are malformed", () => {
    expect(decodeToken(token)).toMatchObject({ networkId: root.id, expires: now, seeds: ["http://seed:7443"] });
    expect(code(() => decodeToken(token.replace("trellis1:", "trellis2:")))).toBe("malformed");
    const raw = Buffer.from(token.slice("trellis1:".length), "base64url");
    const enc = (b: Uint8Array) => "trellis1:" + Buffer.from(b).toString("base64url");
    expect(code(() => decodeToken(enc(raw.subarray(0, 85))))).toBe("malformed");
    const v2 = Uint8Array.from(raw);
    v2[0] = 2;
    expect(code(() => decodeToken(enc(v2)))).toBe("malformed");
    expect(code(() => decodeToken(enc(Uint8Array.from([...raw, 1]))))).toBe("malformed");
    expect(code(() => decodeToken(enc(raw.subarray(0, raw.length - 1))))).toBe("malformed");
  });
});
