import { describe, expect, test } from "bun:test";
import { DSA_SIGNATURE_BYTES, generateIdentity, PUBLIC_IDENTITY_BYTES, type NodeId } from "../identity/identity.ts";
import { rng } from "../sim/clock.ts";
import { RouteError } from "./errors.ts";
import { decodeRecord, encodeRecord, identityRecordCrypto, MAX_RECORD_RELAYS, RECORD_LIFETIME_MS, recordIdentity, type RecordFields } from "./record.ts";

// ML-DSA signing is slow (tens of ms): this file signs three records in all.
const alice = generateIdentity(new Uint8Array(128).fill(1));
const bob = generateIdentity(new Uint8Array(128).fill(2));
const crypto = identityRecordCrypto(alice);
const now = 1_800_000_000_000;
const R1 = "1".repeat(32) as NodeId, R2 = "2".repeat(32) as NodeId;
const fields: RecordFields = { id: alice.public.id, relay: false, relays: [R1, R2], hints: ["http://198.51.100.1:7443"], issued: now, expires: now + RECORD_LIFETIME_MS };
const signed = encodeRecord(fields, crypto);

const fieldsOf = (r: RecordFields) => ({ id: r.id, relay: r.relay, relays: r.relays, hints: r.hints, issued: r.issued, expires: r.expires });

describe("discovery records", () => {
  test("round trip: fields, the public identity that hashes to the node id, the bytes as they travel", () => {
    expect(signed.length).toBe(38 + 2 * 16 + 2 + JSON.stringify(fields.hints).length + 2 + PUBLIC_IDENTITY_BYTES + DSA_SIGNATURE_BYTES);
    const r = decodeRecord(signed, crypto, now + 1000);
    if (typeof r === "string") throw new Error(r);
    expect(fieldsOf(r)).toEqual(fields);
    expect(r.bytes).toEqual(signed);
    // Any node checks it with only the record in hand (bob's checker knows nothing of alice).
    const r2 = decodeRecord(signed, identityRecordCrypto(bob), now);
    expect(typeof r2).toBe("object");
    const pub = recordIdentity(r)!;
    expect(pub.id).toBe(alice.public.id);
    expect(pub).toEqual(alice.public);
  });

  test("a relay's record with no relays and no hints round-trips too", () => {
    const relayRecord = encodeRecord({ ...fields, relay: true, relays: [], hints: [] }, crypto);
    const r = decodeRecord(relayRecord, crypto, now);
    if (typeof r === "string") throw new Error(r);
    expect(fieldsOf(r)).toEqual({ ...fields, relay: true, relays: [], hints: [] });
  });

  test("a flipped bit anywhere, body or signature, is refused", () => {
    const sigAt = signed.length - DSA_SIGNATURE_BYTES;
    // Every header field, then a stride through the hints, the public identity and the signature.
    const at = [0, 3, 4, 5, 20, 21, 28, 29, 36, 37, 38, 53, 54, 70, 72, sigAt - 1, sigAt, signed.length - 1];
    for (let i = 75; i < signed.length; i += 89) at.push(i);
    for (const i of at) {
      const bad = signed.slice();
      bad[i] ^= 1;
      const r = decodeRecord(bad, crypto, now);
      if (typeof r !== "string") throw new Error(`a flip at byte ${i} was accepted`);
    }
  });

  test("expired, or issued far in the future, is refused", () => {
    expect(typeof decodeRecord(signed, crypto, now + RECORD_LIFETIME_MS - 1)).toBe("object");
    expect(decodeRecord(signed, crypto, now + RECORD_LIFETIME_MS)).toContain("expired");
    expect(decodeRecord(signed, crypto, now + 10 * RECORD_LIFETIME_MS)).toContain("expired");
    expect(decodeRecord(signed, crypto, now - 300_000)).toContain("future");
  });

  test("a record signed by one identity under another node's id is refused", () => {
    const forged = encodeRecord({ ...fields, id: bob.public.id }, crypto);
    expect(decodeRecord(forged, crypto, now)).toContain("bad signature");
    expect(decodeRecord(forged, identityRecordCrypto(bob), now)).toContain("bad signature");
    // And recordIdentity never hands out keys that do not hash to the record's id.
    const r = decodeRecord(signed, crypto, now) as Exclude<ReturnType<typeof decodeRecord>, string>;
    expect(recordIdentity({ ...r, id: bob.public.id })).toBeUndefined();
    expect(recordIdentity({ ...r, pub: r.pub.subarray(1) })).toBeUndefined();
  });

  test("garbage and truncations give a reason, never a throw", () => {
    for (let n = 0; n < signed.length; n += 97) expect(typeof decodeRecord(signed.subarray(0, n), crypto, now)).toBe("string");
    expect(typeof decodeRecord(signed.subarray(0, signed.length - DSA_SIGNATURE_BYTES), crypto, now)).toBe("string"); // no signature
    expect(decodeRecord(new Uint8Array(9000), crypto, now)).toContain("bytes");
    expect(decodeRecord(crypto.publicBytes, crypto, now)).toBe("not a TRD1 record");
    const tooMany = signed.slice();
    tooMany[37] = MAX_RECORD_RELAYS + 1;
    expect(decodeRecord(tooMany, crypto, now)).toContain("relays");
    // Random bytes behind the right magic, with every length field random too.
    const random = rng(42);
    for (let k = 0; k < 300; k++) {
      const b = Uint8Array.from({ length: 40 + Math.floor(random() * 300) }, () => Math.floor(random() * 256));
      b.set([0x54, 0x52, 0x44, 0x31]); // "TRD1"
      if (k % 2) b[37] = k % 9; // a plausible relay count half the time
      expect(typeof decodeRecord(b, crypto, now)).toBe("string");
    }
  });

  test("hints must be a JSON list of strings", () => {
    // The hints are checked before the signature, so these need no re-signing.
    const hintsAt = 38 + 2 * 16 + 2;
    const bad = signed.slice();
    bad[hintsAt] = "{".charCodeAt(0);
    expect(decodeRecord(bad, crypto, now)).toContain("JSON");
    const numbers = signed.slice();
    numbers.set(new TextEncoder().encode(`[${"1".repeat(JSON.stringify(fields.hints).length - 2)}]`), hintsAt);
    expect(decodeRecord(numbers, crypto, now)).toContain("list of strings");
  });

  // Issue 14, 2: any linked identity could sign a relay record whose hint is "x" and whose expiry is
  // ~forever; relays kept and gossiped it and every node holding it failed to make new links.
  test("hints must be seed URLs, and a record may not claim to live past its lifetime", () => {
    for (const hints of [["x"], ["javascript:alert(1)"], ["ftp://h:1"], ["http://h:1/path"], ["http://"], Array(9).fill("http://h:1")])
      expect(decodeRecord(encodeRecord({ ...fields, hints }, crypto), crypto, now)).toContain("seed URLs");
    expect(typeof decodeRecord(encodeRecord({ ...fields, hints: ["https://seed.example.net", "http://[2001:db8::1]:7443"] }, crypto), crypto, now)).toBe("object");
    expect(decodeRecord(encodeRecord({ ...fields, expires: now + 1000 * 86400 * 365 * 100 }, crypto), crypto, now)).toContain("stay valid");
    expect(typeof decodeRecord(encodeRecord({ ...fields, expires: now + RECORD_LIFETIME_MS + 60_000 }, crypto), crypto, now)).toBe("object");
  });

  test("too many relays is refused when encoding", () => {
    expect(() => encodeRecord({ ...fields, relays: Array(MAX_RECORD_RELAYS + 1).fill(R1) }, crypto)).toThrow(RouteError);
  });
});

test("a relay's load rides in the flags byte and is signed", () => {
  const relayCrypto = identityRecordCrypto(bob);
  const r = decodeRecord(encodeRecord({ id: bob.public.id, relay: true, load: 42, relays: [], hints: [], issued: now, expires: now + 1000 }, relayCrypto), relayCrypto, now);
  if (typeof r === "string") throw new Error(r);
  expect(r.relay).toBe(true);
  expect(r.load).toBe(42);
});

test("a record whose public identity does not even decode is refused, not waved through", () => {
  const body = signed.subarray(0, signed.length - DSA_SIGNATURE_BYTES);
  const sig = signed.subarray(signed.length - DSA_SIGNATURE_BYTES);
  expect(crypto.verify(alice.public.id, new Uint8Array(10), body, sig)).toBe(false);
  expect(crypto.verify(alice.public.id, new Uint8Array(PUBLIC_IDENTITY_BYTES + 1), body, sig)).toBe(false);
});
