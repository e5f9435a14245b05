// Membership certificates: a network root's signed statement of who a node is in that network.
//
// Encoding (version 1, deterministic; integers big-endian):
//   "TRC1" (4) | kind (1) = 1 member | network id (16) | node id (16) | not before u64 s | not after u64 s
//   | name length (1) | name | ipv4 (4, 0.0.0.0 = none) | ipv4 prefix length (1) | tag count (1) | each: length (1) | tag
//   | subnet count (1) | each: family (1: 4 or 6) | prefix length (1) | address (4 or 16)
//   | issuer (1): 0 = the root signs; 1 = an enrolment key signs, followed by length u16 | enrolment certificate
//   | ML-DSA-65 signature (3309) over every byte before it, context "trellis membership v1"
// Decoding checks every length exactly and throws TrustError("malformed").
import { DSA_SIGNATURE_BYTES, nodeIdBytes, nodeIdFromBytes, sign, verify, type NodeId } from "../identity/identity.ts";
import { formatIpv4, parseIpv4 } from "../identity/address.ts";
import { TrustError } from "./errors.ts";
import { INVITE_SKEW_S, verifyEnrolment } from "./enrolment.ts";
import { decodeSubnets, encodeSubnets, subnetWithin, type Subnet } from "./subnet.ts";

export type { Subnet } from "./subnet.ts";

export const CERT_MAGIC = "TRC1";
export const CERT_CONTEXT = "trellis membership v1";
const KIND_MEMBER = 1;
const ISSUER_ROOT = 0;
const ISSUER_ENROLMENT = 1;

export interface Membership {
  networkId: string;
  nodeId: NodeId;
  name: string;
  ipv4?: string;
  /** The prefix length the node puts on its TUN for `ipv4` (the network's IPv4 prefix). */
  ipv4Prefix: number;
  tags: string[];
  subnets: Subnet[];
  notBefore: number; // unix seconds
  notAfter: number;
  /** When an invite's enrolment key signed this: the root-signed enrolment certificate (src/trust/enrolment.ts). */
  enrolment?: Uint8Array;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function body(m: Membership): Uint8Array {
  const out: number[] = [...Buffer.from(CERT_MAGIC), KIND_MEMBER, ...Buffer.from(m.networkId, "hex"), ...nodeIdBytes(m.nodeId)];
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(v));
    out.push(...b);
  };
  u64(m.notBefore);
  u64(m.notAfter);
  if (!LABEL.test(m.name)) throw new TrustError("malformed", `certificate name ${JSON.stringify(m.name)} is not a DNS label`);
  out.push(m.name.length, ...Buffer.from(m.name));
  const v4 = m.ipv4 ? parseIpv4(m.ipv4) : new Uint8Array(4);
  if (!v4) throw new TrustError("malformed", `certificate ipv4 ${JSON.stringify(m.ipv4)} is not an IPv4 address`);
  if (!Number.isInteger(m.ipv4Prefix) || m.ipv4Prefix < 1 || m.ipv4Prefix > 32) throw new TrustError("malformed", `ipv4 prefix length ${m.ipv4Prefix} is not 1-32`);
  out.push(...v4, m.ipv4Prefix);
  if (m.tags.length > 32) throw new TrustError("malformed", "at most 32 tags");
  out.push(m.tags.length);
  for (const t of m.tags) {
    if (!LABEL.test(t)) throw new TrustError("malformed", `tag ${JSON.stringify(t)} is not a label (a-z, 0-9, '-')`);
    out.push(t.length, ...Buffer.from(t));
  }
  encodeSubnets(m.subnets, out);
  if (m.enrolment) out.push(ISSUER_ENROLMENT, m.enrolment.length >> 8, m.enrolment.length & 255, ...m.enrolment);
  else out.push(ISSUER_ROOT);
  return Uint8Array.from(out);
}

/** Encode and sign a membership with the network's root key (an Identity-like holder of dsaSecret). */
export function issueCertificate(m: Membership, root: { dsaSecret: Uint8Array }): Uint8Array {
  // (`root` is the enrolment key when m.enrolment is set.)
  const b = body(m);
  const sig = sign(root as never, CERT_CONTEXT, b);
  const out = new Uint8Array(b.length + sig.length);
  out.set(b);
  out.set(sig, b.length);
  return out;
}

/** Decode without checking the signature (see verifyCertificate). */
export function decodeCertificate(c: Uint8Array): { membership: Membership; signed: Uint8Array; signature: Uint8Array } {
  let off = 0;
  const need = (n: number) => {
    if (off + n > c.length - DSA_SIGNATURE_BYTES) throw new TrustError("malformed", "certificate is truncated");
    const v = c.subarray(off, off + n);
    off += n;
    return v;
  };
  const byte = () => need(1)[0];
  if (Buffer.from(need(4)).toString() !== CERT_MAGIC) throw new TrustError("malformed", "not a trellis certificate (version 1)");
  if (byte() !== KIND_MEMBER) throw new TrustError("malformed", "unknown certificate kind");
  const networkId = Buffer.from(need(16)).toString("hex");
  const nodeId = nodeIdFromBytes(need(16));
  const notBefore = Number(Buffer.from(need(8)).readBigUInt64BE());
  const notAfter = Number(Buffer.from(need(8)).readBigUInt64BE());
  const name = Buffer.from(need(byte())).toString();
  const v4 = need(4);
  const ipv4 = v4.every((x) => x === 0) ? undefined : formatIpv4(v4);
  const ipv4Prefix = byte();
  const tags: string[] = [];
  for (let n = byte(); n > 0; n--) tags.push(Buffer.from(need(byte())).toString());
  const subnets: Subnet[] = decodeSubnets(need);
  const issuer = byte();
  let enrolment: Uint8Array | undefined;
  if (issuer === ISSUER_ENROLMENT) {
    const len = (byte() << 8) | byte();
    enrolment = Uint8Array.from(need(len));
  } else if (issuer !== ISSUER_ROOT) throw new TrustError("malformed", "unknown issuer kind");
  if (c.length - off !== DSA_SIGNATURE_BYTES) throw new TrustError("malformed", "certificate has trailing bytes");
  const membership: Membership = { networkId, nodeId, name, ipv4, ipv4Prefix, tags, subnets, notBefore, notAfter, ...(enrolment ? { enrolment } : {}) };
  // Re-encoding must give the same bytes: one encoding per membership.
  const signed = c.subarray(0, off);
  if (!Buffer.from(body(membership)).equals(Buffer.from(signed))) throw new TrustError("malformed", "certificate is not in canonical form");
  return { membership, signed, signature: c.subarray(off) };
}

/**
 * Check a certificate for `nodeId` in the network with root key `rootPub` at time `now` (seconds):
 * signature, network, node, validity window. Revocation is the caller's (RevocationSet).
 */
export function verifyCertificate(c: Uint8Array, rootPub: Uint8Array, networkId: string, nodeId: NodeId, now = Date.now() / 1000): Membership {
  const { membership: m, signed, signature } = decodeCertificate(c);
  if (m.networkId !== networkId) throw new TrustError("wrong-network", `certificate is for network ${m.networkId}, not ${networkId}`);
  let signer = rootPub;
  if (m.enrolment) {
    // Signed by an invite's enrolment key: the root vouches for that key and bounds what it may grant.
    const e = verifyEnrolment(m.enrolment, rootPub, networkId);
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    if ((e.name && e.name !== m.name) || e.ipv4 !== m.ipv4 || (e.ipv4 && e.ipv4Prefix !== m.ipv4Prefix) || !same(e.tags, m.tags))
      throw new TrustError("constraint", `certificate for ${m.name} grants more than its invite allowed`);
    const outside = m.subnets.find((s) => !e.subnets.some((g) => subnetWithin(s, g)));
    if (outside) throw new TrustError("constraint", `certificate for ${m.name} lists subnet ${outside.address}/${outside.prefix}, which its invite does not grant`);
    if (e.issuedAt && m.notBefore < e.issuedAt - INVITE_SKEW_S) throw new TrustError("constraint", `certificate for ${m.name} claims validity from before its invite was made`);
    if (m.notBefore > e.usableUntil) throw new TrustError("constraint", `certificate for ${m.name} was made after its invite expired`);
    if (m.notAfter - m.notBefore > e.grantsFor + 600) throw new TrustError("constraint", `certificate for ${m.name} outlasts what its invite grants`);
    signer = e.publicKey;
  }
  if (!verify(signer, CERT_CONTEXT, signed, signature)) throw new TrustError("bad-signature", `certificate for ${m.nodeId} is not signed by the root of ${networkId}`);
  if (m.nodeId !== nodeId) throw new TrustError("wrong-node", `certificate names node ${m.nodeId}, not ${nodeId}`);
  if (now < m.notBefore) throw new TrustError("not-yet-valid", `certificate for ${m.name} is valid from ${new Date(m.notBefore * 1000).toISOString()}`);
  if (now > m.notAfter) throw new TrustError("expired", `certificate for ${m.name} expired ${new Date(m.notAfter * 1000).toISOString()}`);
  return m;
}
