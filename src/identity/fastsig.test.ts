// The runtime's ML-DSA (./fastsig.ts) against noble's (./identity.ts): each checks what the other signs,
// and both refuse the same forgeries, so which one runs never changes an answer.
import { afterEach, describe, expect, test } from "bun:test";
import { forceNoble, signAsync, verifyAsync } from "./fastsig.ts";
import { generateIdentity, sign, verify } from "./identity.ts";

const a = generateIdentity(new Uint8Array(128).fill(1)), b = generateIdentity(new Uint8Array(128).fill(2));
const msg = new TextEncoder().encode("a record body");

describe("ML-DSA-65 in the runtime and in noble", () => {
  afterEach(() => forceNoble(false));

  for (const noble of [false, true])
    test(`${noble ? "noble fallback" : "runtime"}: signs what noble checks, checks what noble signs, refuses forgeries`, async () => {
      forceNoble(noble);
      const mine = await signAsync(a, "trellis test v1", msg);
      expect(verify(a.public, "trellis test v1", msg, mine)).toBe(true); // noble takes the runtime's signature
      const nobles = sign(a, "trellis test v1", msg);
      expect(await verifyAsync(a.public, "trellis test v1", msg, nobles)).toBe(true);
      expect(await verifyAsync(a.public.dsa, "trellis test v1", msg, nobles)).toBe(true); // raw key bytes
      // Forgeries: another context, another message, another key, a flipped bit, a cut or junk signature, a junk key.
      expect(await verifyAsync(a.public, "trellis other v1", msg, nobles)).toBe(false);
      expect(await verifyAsync(a.public, "trellis test v1", Uint8Array.of(...msg, 0), nobles)).toBe(false);
      expect(await verifyAsync(b.public, "trellis test v1", msg, nobles)).toBe(false);
      const flipped = Uint8Array.from(nobles);
      flipped[100] ^= 1;
      expect(await verifyAsync(a.public, "trellis test v1", msg, flipped)).toBe(false);
      expect(await verifyAsync(a.public, "trellis test v1", msg, nobles.subarray(1))).toBe(false);
      expect(await verifyAsync(a.public, "trellis test v1", msg, new Uint8Array(nobles.length))).toBe(false);
      expect(await verifyAsync(new Uint8Array(1952).fill(0xff), "trellis test v1", msg, nobles)).toBe(false);
      expect(await verifyAsync(new Uint8Array(10), "trellis test v1", msg, nobles)).toBe(false);
    });

  test("an identity without its ML-DSA seed (made elsewhere) still signs, through noble", async () => {
    const { dsaSeed: _, ...seedless } = a;
    const s = await signAsync(seedless, "trellis test v1", msg);
    expect(verify(a.public, "trellis test v1", msg, s)).toBe(true);
  });
});
