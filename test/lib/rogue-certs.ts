// Preloaded into a `trellis up` process by e2e tests (TestNode spec `preload`): the node presents a
// tampered copy of each of its certificates, granting itself the tag "server" under the root's
// original signature. Its peers must refuse it: a certificate's rights are the root's, not the holder's.
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { DSA_SIGNATURE_BYTES } from "../../src/identity/identity.ts";
import { decodeCertificate, issueCertificate } from "../../src/trust/certificate.ts";
import { Networks } from "../../src/trust/networks.ts";

const anyKey = ml_dsa65.keygen(new Uint8Array(32).fill(99)).secretKey;

function tamper(b64: string): string {
  const cert = Uint8Array.from(Buffer.from(b64, "base64"));
  const { membership, signature } = decodeCertificate(cert);
  const forged = issueCertificate({ ...membership, tags: [...membership.tags, "server"] }, { dsaSecret: anyKey });
  forged.set(signature, forged.length - DSA_SIGNATURE_BYTES); // the root's signature, over other bytes
  return Buffer.from(forged).toString("base64");
}

const proofs = Networks.prototype.proofs;
Networks.prototype.proofs = function (this: Networks): string[] {
  return proofs.call(this).map(tamper);
};
console.error("rogue-certs: this node presents tampered certificates (tag 'server' added)");
