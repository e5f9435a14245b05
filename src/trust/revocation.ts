// Revocation records: a root-signed "node X is out of network N", accepted from anyone after checking
// the signature, stored, and passed on.
//
//   "TRR1" (4) | network id (16) | node id (16) | time u64 s | reason length (1) | reason | signature (3309)
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DSA_SIGNATURE_BYTES, nodeIdBytes, nodeIdFromBytes, sign, verify, type NodeId } from "../identity/identity.ts";
import { TrustError } from "./errors.ts";

const MAGIC = "TRR1";
const CONTEXT = "trellis revocation v1";

export interface Revocation {
  networkId: string;
  nodeId: NodeId;
  time: number;
  reason: string;
}

function body(r: Revocation): Uint8Array {
  const reason = Buffer.from(r.reason.slice(0, 200));
  const t = Buffer.alloc(8);
  t.writeBigUInt64BE(BigInt(r.time));
  return Uint8Array.from([...Buffer.from(MAGIC), ...Buffer.from(r.networkId, "hex"), ...nodeIdBytes(r.nodeId), ...t, reason.length, ...reason]);
}

export function issueRevocation(r: Revocation, root: { dsaSecret: Uint8Array }): Uint8Array {
  const b = body(r);
  return Uint8Array.from([...b, ...sign(root as never, CONTEXT, b)]);
}

export function verifyRevocation(rec: Uint8Array, rootPub: Uint8Array, networkId: string): Revocation {
  if (rec.length < 4 + 16 + 16 + 8 + 1 + DSA_SIGNATURE_BYTES || Buffer.from(rec.subarray(0, 4)).toString() !== MAGIC) throw new TrustError("malformed", "not a revocation record");
  const reasonLen = rec[44];
  if (rec.length !== 45 + reasonLen + DSA_SIGNATURE_BYTES) throw new TrustError("malformed", "revocation record has the wrong length");
  const r: Revocation = {
    networkId: Buffer.from(rec.subarray(4, 20)).toString("hex"),
    nodeId: nodeIdFromBytes(rec.subarray(20, 36)),
    time: Number(Buffer.from(rec.subarray(36, 44)).readBigUInt64BE()),
    reason: Buffer.from(rec.subarray(45, 45 + reasonLen)).toString(),
  };
  if (r.networkId !== networkId) throw new TrustError("wrong-network", `revocation is for network ${r.networkId}`);
  if (!verify(rootPub, CONTEXT, rec.subarray(0, 45 + reasonLen), rec.subarray(45 + reasonLen))) throw new TrustError("bad-signature", "revocation is not signed by the network root");
  return r;
}

/** The revocations a node knows for one network, kept in a directory (one file per revoked node). */
export class RevocationSet {
  private revoked = new Map<NodeId, { record: Uint8Array; rev: Revocation }>();

  constructor(private readonly dir: string, private readonly rootPub: Uint8Array, private readonly networkId: string) {
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) {
      try {
        this.add(Uint8Array.from(Buffer.from(readFileSync(join(dir, f), "utf8").trim(), "base64")), false);
      } catch {}
    }
  }

  /** Verify and store a record; returns it when it is new, undefined when already known. Throws TrustError. */
  add(record: Uint8Array, persist = true): Revocation | undefined {
    // Already known (this network, a node we hold a revocation for): nothing to learn, no signature to check.
    if (record.length > 36 && Buffer.from(record.subarray(4, 20)).toString("hex") === this.networkId && this.revoked.has(Buffer.from(record.subarray(20, 36)).toString("hex") as NodeId)) return;
    const rev = verifyRevocation(record, this.rootPub, this.networkId);
    if (this.revoked.has(rev.nodeId)) return;
    this.revoked.set(rev.nodeId, { record, rev });
    if (persist) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      writeFileSync(join(this.dir, `${rev.nodeId}.rev`), Buffer.from(record).toString("base64") + "\n");
    }
    return rev;
  }

  isRevoked(id: NodeId): boolean {
    return this.revoked.has(id);
  }

  records(): Uint8Array[] {
    return [...this.revoked.values()].map((v) => v.record);
  }
}
