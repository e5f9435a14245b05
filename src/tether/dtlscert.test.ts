// The DTLS certificate made without @peculiar/x509: a well-formed X.509 certificate (node:crypto and
// werift both parse it), self-signed, whose key matches; and two links present it and connect.
import { expect, test } from "bun:test";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { RTCCertificate } from "werift";
import { DTLS_SIGNATURE_HASH, makeDtlsCertificate } from "./dtlscert.ts";

test("a self-signed ECDSA P-256 certificate: parsed by node:crypto and werift, signature and key match", () => {
  const now = new Date("2026-12-01T21:05:15Z");
  const c = makeDtlsCertificate(now);
  const x = new X509Certificate(c.certPem);
  expect(x.subject).toBe("CN=trellis");
  expect(x.issuer).toBe("CN=trellis");
  expect(x.verify(x.publicKey)).toBe(true);
  expect(x.checkPrivateKey(createPrivateKey(c.keyPem))).toBe(true);
  expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
  expect(new Date(x.validFrom).getTime()).toBe(now.getTime());
  expect(new Date(x.validTo).getTime() - now.getTime()).toBe(10 * 365 * 24 * 3600 * 1000);
  expect(c.signatureHash).toEqual(DTLS_SIGNATURE_HASH);
  const w = new RTCCertificate(c.keyPem, c.certPem, c.signatureHash);
  expect(w.getFingerprints()[0].value).toBe(x.fingerprint256);
  expect(createPublicKey(w.publicKey).equals(x.publicKey)).toBe(true);
});

test("validity past 2049 is written as GeneralizedTime", () => {
  const x = new X509Certificate(makeDtlsCertificate(new Date("2045-06-01T00:00:00Z")).certPem);
  expect(new Date(x.validTo).getUTCFullYear()).toBe(2055);
});
