// Network roots: the key file on the offline machine, and the network info that travels with every
// certificate bundle (its root key must hash to its network id, or anyone could ship their own root).
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { TrustError } from "./errors.ts";
import { createNetwork, decodeNetworkInfo, encodeNetworkInfo, loadRoot, networkIdOf } from "./root.ts";

const dir = mkdtempSync(join(tmpdir(), "trellis-root-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const code = (f: () => unknown) => {
  try {
    f();
    return "ok";
  } catch (e) {
    if (e instanceof TrustError) return e.code;
    throw e;
  }
};

test("network info whose root key does not hash to its id is refused (no swapping in another root)", () => {
  const a = ml_dsa65.keygen(new Uint8Array(32).fill(1)).publicKey, b = ml_dsa65.keygen(new Uint8Array(32).fill(2)).publicKey;
  const good = encodeNetworkInfo({ name: "home", id: networkIdOf(a), rootPub: a });
  expect(decodeNetworkInfo(good, "x").id).toBe(networkIdOf(a));
  const swapped = encodeNetworkInfo({ name: "home", id: networkIdOf(a), rootPub: b });
  expect(code(() => decodeNetworkInfo(swapped, "x"))).toBe("malformed");
  expect(code(() => decodeNetworkInfo(JSON.stringify({ name: "home", id: networkIdOf(a), root: Buffer.from(a.subarray(0, 100)).toString("base64") }), "x"))).toBe("malformed");
  for (const t of ["nope", "{}", JSON.stringify({ name: 1, id: networkIdOf(a), root: "" }), JSON.stringify({ name: "home", id: 5, root: "" })]) expect(code(() => decodeNetworkInfo(t, "x"))).toBe("malformed");
});

test("a root is made once, kept 0600, and loaded only from a private, matching key file", () => {
  const d = join(dir, "home");
  expect(code(() => createNetwork("Not A Name", join(dir, "bad")))).toBe("malformed");
  const r = createNetwork("home", d);
  expect(code(() => createNetwork("home", d))).toBe("io"); // never overwritten
  expect(loadRoot(d).id).toBe(r.id);
  chmodSync(join(d, "root.key"), 0o644);
  expect(code(() => loadRoot(d))).toBe("io");
  chmodSync(join(d, "root.key"), 0o600);
  expect(code(() => loadRoot(join(dir, "none")))).toBe("io");
  // network.json from another root beside this key: refused.
  const other = createNetwork("other", join(dir, "other"));
  const saved = readFileSync(join(d, "network.json"), "utf8");
  writeFileSync(join(d, "network.json"), encodeNetworkInfo(other));
  expect(code(() => loadRoot(d))).toBe("malformed");
  writeFileSync(join(d, "network.json"), saved);
  const key = readFileSync(join(d, "root.key"), "utf8");
  writeFileSync(join(d, "root.key"), key.replace("trellis-root-v1", "something-else"), { mode: 0o600 });
  expect(code(() => loadRoot(d))).toBe("malformed");
});
