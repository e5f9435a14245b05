// A node's long-term identity: ML-DSA-65 signing keys, ML-KEM-768 + X25519 agreement keys, and the node id.
//
// The private part is three seeds (128 bytes) kept in `identity.key` (mode 0600); the public part is
// derived from them on load. The node id is the first 16 bytes of SHA-256 over a domain label and the
// three public keys, written as 32 lowercase hex characters; the overlay IPv6 address comes from it
// (see address.ts), so an address proves which identity owns it.
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";

/** Sizes of the public keys and signatures (FIPS 203 / FIPS 204 / RFC 7748). */
export const DSA_PUBLIC_BYTES = 1952;
export const DSA_SIGNATURE_BYTES = 3309;
export const KEM_PUBLIC_BYTES = 1184;
export const KEM_CIPHERTEXT_BYTES = 1088;
export const X25519_BYTES = 32;
/** Encoded public identity: dsa || kem || x25519. */
export const PUBLIC_IDENTITY_BYTES = DSA_PUBLIC_BYTES + KEM_PUBLIC_BYTES + X25519_BYTES;
export const NODE_ID_BYTES = 16;

const SEED_FILE_MAGIC = "trellis-identity-v1\n";
const DSA_SEED = 32, KEM_SEED = 64, X_SEED = 32;
const NODE_ID_LABEL = new TextEncoder().encode("trellis node id v1");

/** 32 lowercase hex characters: a hash of the identity's public keys. */
export type NodeId = string & { readonly __brand: "NodeId" };

export type IdentityErrorCode = "missing" | "permissions" | "corrupt" | "bad-node-id" | "bad-public-identity";
export class IdentityError extends Error {
  constructor(readonly code: IdentityErrorCode, message: string) {
    super(message);
    this.name = "IdentityError";
  }
}

export interface PublicIdentity {
  readonly id: NodeId;
  readonly dsa: Uint8Array;
  readonly kem: Uint8Array;
  readonly x25519: Uint8Array;
}

export interface Identity {
  readonly public: PublicIdentity;
  readonly dsaSecret: Uint8Array;
  readonly kemSecret: Uint8Array;
  readonly x25519Secret: Uint8Array;
  /** The 32-byte ML-DSA seed the secret key came from: what the runtime's own ML-DSA signs with (./fastsig.ts). */
  readonly dsaSeed?: Uint8Array;
  /** The 64-byte ML-KEM seed (d || z) the KEM secret key came from: what the runtime's ML-KEM takes (src/handshake/kex.ts). */
  readonly kemSeed?: Uint8Array;
}

export function isNodeId(s: string): s is NodeId {
  return /^[0-9a-f]{32}$/.test(s);
}

export function parseNodeId(s: string): NodeId {
  const v = s.trim().toLowerCase();
  if (!isNodeId(v)) throw new IdentityError("bad-node-id", `not a node id (want 32 hex characters): ${JSON.stringify(s)}`);
  return v;
}

export function nodeIdBytes(id: NodeId): Uint8Array {
  return Uint8Array.from(Buffer.from(id, "hex"));
}

export function nodeIdFromBytes(b: Uint8Array): NodeId {
  if (b.length !== NODE_ID_BYTES) throw new IdentityError("bad-node-id", `node id must be ${NODE_ID_BYTES} bytes, got ${b.length}`);
  return Buffer.from(b).toString("hex") as NodeId;
}

/** SHA-256 through node:crypto (~3 us for the 3.2 KB; noble's took ~22): once per initiation a responder opens. */
export function nodeIdOf(dsa: Uint8Array, kem: Uint8Array, x: Uint8Array): NodeId {
  const h = createHash("sha256").update(NODE_ID_LABEL).update(dsa).update(kem).update(x).digest();
  return nodeIdFromBytes(h.subarray(0, NODE_ID_BYTES));
}

function fromSeeds(seedBytes: Uint8Array): Identity {
  // A private copy: the caller wipes its buffer, and a Buffer's slice() would be a view into it.
  const seeds = Uint8Array.from(seedBytes);
  const dsa = ml_dsa65.keygen(seeds.subarray(0, DSA_SEED));
  const kem = ml_kem768.keygen(seeds.subarray(DSA_SEED, DSA_SEED + KEM_SEED));
  const xSecret = seeds.slice(DSA_SEED + KEM_SEED, DSA_SEED + KEM_SEED + X_SEED);
  const xPublic = x25519.getPublicKey(xSecret);
  return {
    public: { id: nodeIdOf(dsa.publicKey, kem.publicKey, xPublic), dsa: dsa.publicKey, kem: kem.publicKey, x25519: xPublic },
    dsaSecret: dsa.secretKey,
    kemSecret: kem.secretKey,
    x25519Secret: xSecret,
    dsaSeed: seeds.slice(0, DSA_SEED),
    kemSeed: seeds.slice(DSA_SEED, DSA_SEED + KEM_SEED),
  };
}

/** Make a fresh identity from the system's random source. Pass seeds only in tests. */
export function generateIdentity(seeds: Uint8Array = randomBytes(DSA_SEED + KEM_SEED + X_SEED)): Identity & { seeds: Uint8Array } {
  if (seeds.length !== DSA_SEED + KEM_SEED + X_SEED) throw new IdentityError("corrupt", "identity seeds must be 128 bytes");
  return { ...fromSeeds(seeds), seeds: Uint8Array.from(seeds) };
}

export function encodePublicIdentity(p: PublicIdentity): Uint8Array {
  const out = new Uint8Array(PUBLIC_IDENTITY_BYTES);
  out.set(p.dsa, 0);
  out.set(p.kem, DSA_PUBLIC_BYTES);
  out.set(p.x25519, DSA_PUBLIC_BYTES + KEM_PUBLIC_BYTES);
  return out;
}

/** Decode dsa || kem || x25519; the node id is computed, never trusted from the wire. */
export function decodePublicIdentity(b: Uint8Array): PublicIdentity {
  if (b.length !== PUBLIC_IDENTITY_BYTES)
    throw new IdentityError("bad-public-identity", `public identity must be ${PUBLIC_IDENTITY_BYTES} bytes, got ${b.length}`);
  const dsa = b.slice(0, DSA_PUBLIC_BYTES);
  const kem = b.slice(DSA_PUBLIC_BYTES, DSA_PUBLIC_BYTES + KEM_PUBLIC_BYTES);
  const x = b.slice(DSA_PUBLIC_BYTES + KEM_PUBLIC_BYTES);
  return { id: nodeIdOf(dsa, kem, x), dsa, kem, x25519: x };
}

/** Domain-separated ML-DSA-65 signature (FIPS 204 context string = `context`). ~22 ms: never per packet. */
export function sign(identity: Identity, context: string, msg: Uint8Array): Uint8Array {
  return ml_dsa65.sign(msg, identity.dsaSecret, { context: new TextEncoder().encode(context) });
}

export function verify(pub: PublicIdentity | Uint8Array, context: string, msg: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== DSA_SIGNATURE_BYTES) return false;
  const key = pub instanceof Uint8Array ? pub : pub.dsa;
  try {
    return ml_dsa65.verify(sig, msg, key, { context: new TextEncoder().encode(context) });
  } catch {
    return false;
  }
}

export const IDENTITY_KEY_FILE = "identity.key";
export const IDENTITY_PUB_FILE = "identity.pub";

/** Write a new identity into `dir` (created 0700); refuses to overwrite an existing one. */
export function initIdentity(dir: string): Identity {
  const keyPath = join(dir, IDENTITY_KEY_FILE);
  if (existsSync(keyPath)) return loadIdentity(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const id = generateIdentity();
  const body = Buffer.concat([Buffer.from(SEED_FILE_MAGIC), Buffer.from(Buffer.from(id.seeds).toString("base64") + "\n")]);
  const tmp = keyPath + ".tmp";
  writeFileSync(tmp, body, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, keyPath);
  writeFileSync(join(dir, IDENTITY_PUB_FILE), Buffer.from(encodePublicIdentity(id.public)).toString("base64") + "\n", { mode: 0o644 });
  id.seeds.fill(0);
  return id;
}

/** Load the identity in `dir`; refuses a private key file that group or others can read. */
export function loadIdentity(dir: string): Identity {
  const keyPath = join(dir, IDENTITY_KEY_FILE);
  if (!existsSync(keyPath)) throw new IdentityError("missing", `no identity at ${keyPath}: run 'trellis init --state ${dir}' first`);
  const mode = statSync(keyPath).mode & 0o777;
  if (mode & 0o077)
    throw new IdentityError("permissions", `${keyPath} is readable by others (mode ${mode.toString(8).padStart(4, "0")}); run 'chmod 600 ${keyPath}'`);
  const text = readFileSync(keyPath, "utf8");
  if (!text.startsWith(SEED_FILE_MAGIC)) throw new IdentityError("corrupt", `${keyPath}: not a trellis identity file`);
  const seeds = Buffer.from(text.slice(SEED_FILE_MAGIC.length).trim(), "base64");
  if (seeds.length !== DSA_SEED + KEM_SEED + X_SEED) throw new IdentityError("corrupt", `${keyPath}: identity seeds have the wrong length`);
  const id = fromSeeds(seeds);
  seeds.fill(0);
  return id;
}
