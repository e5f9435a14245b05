// A cheap stand-in for ML-DSA in simulations: they test routing, not signatures (records have their
// own tests with real keys). The "public key" is the node id; the "signature" a truncated SHA-256.
import { createHash } from "node:crypto";
import type { NodeId } from "../identity/identity.ts";
import type { RecordCrypto } from "../route/record.ts";

export function simRecordCrypto(id: NodeId): RecordCrypto {
  const tag = (body: Uint8Array) => createHash("sha256").update(body).digest().subarray(0, 8);
  return {
    publicBytes: Buffer.from(id, "hex"),
    sign: (body) => tag(body),
    verify: (rid, pub, body, sig) => Buffer.from(pub).toString("hex") === rid && Buffer.from(tag(body)).equals(Buffer.from(sig)),
  };
}
