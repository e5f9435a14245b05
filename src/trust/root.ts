// A network's root key: made offline by `trellis network create`, it signs membership and revocations.
//
// ROOTDIR holds root.key (the 32-byte ML-DSA-65 seed, mode 0600) and network.json (name, network id,
// root public key). The network id is the first 16 bytes of SHA-256("trellis network id v1" || root pk).
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TrustError } from "./errors.ts";

export interface NetworkInfo {
  name: string;
  id: string;
  rootPub: Uint8Array;
}

export interface Root extends NetworkInfo {
  dsaSecret: Uint8Array;
}

export function networkIdOf(rootPub: Uint8Array): string {
  const h = sha256.create().update(new TextEncoder().encode("trellis network id v1")).update(rootPub).digest();
  return Buffer.from(h.subarray(0, 16)).toString("hex");
}

export function encodeNetworkInfo(n: NetworkInfo): string {
  return JSON.stringify({ name: n.name, id: n.id, root: Buffer.from(n.rootPub).toString("base64") });
}

export function decodeNetworkInfo(text: string, where: string): NetworkInfo {
  let v: { name?: unknown; id?: unknown; root?: unknown };
  try {
    v = JSON.parse(text);
  } catch {
    throw new TrustError("malformed", `${where}: not JSON`);
  }
  if (typeof v.name !== "string" || typeof v.id !== "string" || typeof v.root !== "string") throw new TrustError("malformed", `${where}: needs name, id and root`);
  const rootPub = Uint8Array.from(Buffer.from(v.root, "base64"));
  if (rootPub.length !== 1952 || networkIdOf(rootPub) !== v.id) throw new TrustError("malformed", `${where}: the root key does not match the network id`);
  return { name: v.name, id: v.id, rootPub };
}

export function createNetwork(name: string, dir: string): Root {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw new TrustError("malformed", `network name ${JSON.stringify(name)}: use lowercase letters, digits and '-'`);
  if (existsSync(join(dir, "root.key"))) throw new TrustError("io", `${dir} already holds a root key; refusing to overwrite it`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const seed = randomBytes(32);
  const keys = ml_dsa65.keygen(seed);
  writeFileSync(join(dir, "root.key"), `trellis-root-v1\n${seed.toString("base64")}\n`, { mode: 0o600 });
  const root = { name, id: networkIdOf(keys.publicKey), rootPub: keys.publicKey, dsaSecret: keys.secretKey };
  writeFileSync(join(dir, "network.json"), encodeNetworkInfo(root) + "\n", { mode: 0o644 });
  return root;
}

export function loadRoot(dir: string): Root {
  const keyPath = join(dir, "root.key");
  if (!existsSync(keyPath))
    throw new TrustError("io", existsSync(dir)
      ? `there is no root key in ${dir}; pass the directory you gave 'trellis network create NAME --out', or make a network there with that command`
      : `the root directory ${dir} does not exist; pass the directory you gave 'trellis network create NAME --out', or make one with 'trellis network create NAME --out ${dir}'`);
  if (statSync(keyPath).mode & 0o077) throw new TrustError("io", `${keyPath} is readable by others; run 'chmod 600 ${keyPath}'`);
  const text = readFileSync(keyPath, "utf8");
  if (!text.startsWith("trellis-root-v1\n")) throw new TrustError("malformed", `${keyPath}: not a trellis root key`);
  const keys = ml_dsa65.keygen(Buffer.from(text.slice(16).trim(), "base64"));
  const info = decodeNetworkInfo(readFileSync(join(dir, "network.json"), "utf8"), join(dir, "network.json"));
  if (!Buffer.from(info.rootPub).equals(Buffer.from(keys.publicKey))) throw new TrustError("malformed", `${dir}: network.json does not match root.key`);
  return { ...info, dsaSecret: keys.secretKey };
}
