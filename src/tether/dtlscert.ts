// The DTLS certificate every link of this process presents: a self-signed ECDSA P-256 X.509 certificate
// made here with node:crypto, once per process. werift would make it with @peculiar/x509 and WebCrypto,
// which hold ~15 MB of a node's memory for one certificate; only its fingerprint matters to the far
// side (it travels in the signed SDP), so the certificate carries no extensions.
//
//   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm (ecdsa-with-SHA256), signature BIT STRING }
//   TBSCertificate ::= SEQUENCE { [0] version v3, serialNumber, signature, issuer, validity, subject, spki }
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";

/** ecdsa-with-SHA256 (1.2.840.10045.4.3.2) as werift names it: hash sha256 (4), signature ecdsa (3). */
export const DTLS_SIGNATURE_HASH = { hash: 4, signature: 3 } as const;
const ECDSA_WITH_SHA256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const COMMON_NAME = [0x06, 0x03, 0x55, 0x04, 0x03];
/** How long the certificate is valid: ten years, as werift's own (peers check only its fingerprint). */
const VALID_MS = 10 * 365 * 24 * 3600 * 1000;

/** A DER element: tag, definite length, content. */
function der(tag: number, ...content: (Uint8Array | number[])[]): Uint8Array {
  const body = Buffer.concat(content.map((c) => Buffer.from(c)));
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}
const seq = (...c: (Uint8Array | number[])[]) => der(0x30, ...c);

/** UTCTime (years 1950–2049) or GeneralizedTime, to the second, in UTC. */
function time(t: Date): Uint8Array {
  const iso = t.toISOString(); // 2026-12-01T21:05:15.123Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z"; // 20261201210515Z
  const year = t.getUTCFullYear();
  return year >= 1950 && year < 2050 ? der(0x17, Buffer.from(digits.slice(2), "latin1")) : der(0x18, Buffer.from(digits, "latin1"));
}

export interface DtlsCertificate {
  keyPem: string;
  certPem: string;
  signatureHash: typeof DTLS_SIGNATURE_HASH;
}

/** A fresh self-signed certificate and its key (PEM), valid from `now` for ten years. */
export function makeDtlsCertificate(now = new Date()): DtlsCertificate {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const serial = randomBytes(8);
  serial[0] &= 0x7f; // a positive INTEGER
  serial[0] |= 0x01; // and no leading zero byte to strip
  const name = seq(der(0x31, seq(COMMON_NAME, der(0x0c, Buffer.from("trellis")))));
  const tbs = seq(
    der(0xa0, der(0x02, [0x02])),
    der(0x02, serial),
    seq(ECDSA_WITH_SHA256),
    name,
    seq(time(now), time(new Date(now.getTime() + VALID_MS))),
    name,
    publicKey.export({ type: "spki", format: "der" }),
  );
  const signature = sign("sha256", tbs, privateKey); // DER-encoded ECDSA-Sig-Value
  const cert = seq(tbs, seq(ECDSA_WITH_SHA256), der(0x03, [0x00], signature));
  const b64 = Buffer.from(cert).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    signatureHash: DTLS_SIGNATURE_HASH,
  };
}

let shared: DtlsCertificate | undefined;
/** The process's certificate, made on first use. */
export function dtlsCertificate(): DtlsCertificate {
  return (shared ??= makeDtlsCertificate());
}

