// Identity: node ids, public identity encoding, signatures, and the key file's permission check.
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  decodePublicIdentity, encodePublicIdentity, generateIdentity, IdentityError, initIdentity, loadIdentity,
  parseNodeId, PUBLIC_IDENTITY_BYTES, sign, verify,
} from "./identity.ts";
import { addressKey6, equal16, formatIpv6, inOverlayPrefix6, ipv6BytesOf, ipv6Of, parseIpv4, parseIpv6 } from "./address.ts";

const seeds = (n: number) => new Uint8Array(128).fill(n);

describe("identity", () => {
  test("the node id is a deterministic hash of the public keys", () => {
    const a = generateIdentity(seeds(1)), a2 = generateIdentity(seeds(1)), b = generateIdentity(seeds(2));
    expect(a.public.id).toMatch(/^[0-9a-f]{32}$/);
    expect(a2.public.id).toBe(a.public.id);
    expect(b.public.id).not.toBe(a.public.id);
  });

  test("public identity round-trips and the id is recomputed, never trusted", () => {
    const a = generateIdentity(seeds(3));
    const enc = encodePublicIdentity(a.public);
    expect(enc.length).toBe(PUBLIC_IDENTITY_BYTES);
    expect(decodePublicIdentity(enc).id).toBe(a.public.id);
    enc[5] ^= 1;
    expect(decodePublicIdentity(enc).id).not.toBe(a.public.id);
    expect(() => decodePublicIdentity(enc.subarray(1))).toThrow(IdentityError);
  });

  test("signatures are bound to their context and key", () => {
    const a = generateIdentity(seeds(4)), b = generateIdentity(seeds(5));
    const msg = new TextEncoder().encode("hello");
    const sig = sign(a, "ctx-1", msg);
    expect(verify(a.public, "ctx-1", msg, sig)).toBe(true);
    expect(verify(a.public, "ctx-2", msg, sig)).toBe(false);
    expect(verify(b.public, "ctx-1", msg, sig)).toBe(false);
    expect(verify(a.public, "ctx-1", new TextEncoder().encode("hellO"), sig)).toBe(false);
    expect(verify(a.public, "ctx-1", msg, sig.subarray(1))).toBe(false);
  });

  test("init writes 0600 keys, load refuses a key file others can read", () => {
    const dir = mkdtempSync(join(tmpdir(), "trellis-id-"));
    try {
      const made = initIdentity(dir);
      expect(loadIdentity(dir).public.id).toBe(made.public.id);
      expect(initIdentity(dir).public.id).toBe(made.public.id); // a second init keeps it
      chmodSync(join(dir, "identity.key"), 0o644);
      expect(() => loadIdentity(dir)).toThrow(/readable by others/);
      chmodSync(join(dir, "identity.key"), 0o600);
      writeFileSync(join(dir, "identity.key"), "junk", { mode: 0o600 });
      expect(() => loadIdentity(dir)).toThrow(/not a trellis identity/);
      expect(() => loadIdentity(join(dir, "nope"))).toThrow(/trellis init/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("parseNodeId names the bad value", () => {
    expect(parseNodeId(" 8643D9F24BAE2B468337ED99E5C45424 ") as string).toBe("8643d9f24bae2b468337ed99e5c45424");
    expect(() => parseNodeId("xyz")).toThrow(/"xyz"/);
  });
});

describe("overlay addresses", () => {
  test("the IPv6 address is the ULA prefix plus node id bits", () => {
    const id = parseNodeId("8643d9f24bae2b468337ed99e5c45424");
    expect(ipv6Of(id)).toBe("fd74:7265:6c6c:8643:d9f2:4bae:2b46:8337");
    const b = ipv6BytesOf(id);
    expect(inOverlayPrefix6(b)).toBe(true);
    expect(addressKey6(b)).toBe(parseInt(id.slice(0, 12), 16));
    expect(equal16(b, 0, parseIpv6("fd74:7265:6c6c:8643:d9f2:4bae:2b46:8337")!)).toBe(true);
    expect(inOverlayPrefix6(parseIpv6("fd00::1")!)).toBe(false);
  });

  test("IPv6 text round-trips with RFC 5952 compression", () => {
    for (const s of ["::", "::1", "fe80::1", "2001:db8::1:0:0:1", "fd74:7265:6c6c:8643:d9f2:4bae:2b46:8337", "1:0:0:2::3"]) {
      expect(formatIpv6(parseIpv6(s)!)).toBe(s);
    }
    expect(formatIpv6(parseIpv6("1:0:0:2:0:0:3:4")!)).toBe("1::2:0:0:3:4"); // ties: the first run
    for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7", "g::1", ""]) expect(parseIpv6(bad)).toBeNull();
  });

  test("IPv4 parsing rejects junk", () => {
    expect(parseIpv4("100.64.0.2")).toEqual(Uint8Array.from([100, 64, 0, 2]));
    for (const bad of ["256.1.1.1", "1.2.3", "a.b.c.d", "1.2.3.4.5"]) expect(parseIpv4(bad)).toBeNull();
  });
});

test("a loaded identity agrees keys like the one that was made (secrets are not wiped with the file buffer)", async () => {
  const { x25519 } = await import("@noble/curves/ed25519.js");
  const dir = mkdtempSync(join(tmpdir(), "trellis-id-"));
  try {
    const made = initIdentity(dir);
    const loaded = loadIdentity(dir);
    expect(Buffer.from(x25519.getPublicKey(loaded.x25519Secret)).equals(Buffer.from(made.public.x25519))).toBe(true);
    expect(loaded.x25519Secret.some((b) => b !== 0)).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
