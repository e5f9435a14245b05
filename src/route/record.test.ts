import { describe, expect, test } from "bun:test";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { decodeRecord, encodeRecord, identityRecordCrypto, MAX_RECORD_RELAYS, recordIdentity, type RecordFields } from "./record.ts";

const alice = generateIdentity(new Uint8Array(128).fill(1));
const bob = generateIdentity(new Uint8Array(128).fill(2));
const crypto = identityRecordCrypto(alice);
const now = 1_800_000_000_000;
const R1 = "1".repeat(32) as NodeId;
const fields: RecordFields = { id: alice.public.id, relay: false, relays: [R1], hints: ["http://198.51.100.1:7443"], issued: now, expires: now + 600_000 };
const signed = encodeRecord(fields, crypto); // one ML-DSA signature for the whole file

describe("discovery records", () => {
  test("round trip: fields, and the public identity that hashes to the node id", () => {
    const r = decodeRecord(signed, crypto, now + 1000);
    if (typeof r === "string") throw new Error(r);
    expect({ id: r.id, relay: r.relay, relays: r.relays, hints: r.hints, issued: r.issued, expires: r.expires }).toEqual(fields);
    expect(recordIdentity(r)?.id).toBe(alice.public.id);
  });

  test("a flipped byte anywhere is refused", () => {
    for (const at of [4, 6, 25, 38, 60, signed.length - 3500, signed.length - 1]) {
      const bad = signed.slice();
      bad[at] ^= 1;
      expect(typeof decodeRecord(bad, crypto, now)).toBe("string");
    }
  });

  test("expired, or issued far in the future, is refused", () => {
    expect(decodeRecord(signed, crypto, now + 600_000)).toContain("expired");
    expect(decodeRecord(signed, crypto, now - 300_000)).toContain("future");
  });

  test("a record under another node's id is refused (the keys must hash to the id)", () => {
    const forged = encodeRecord({ ...fields, id: bob.public.id }, crypto);
    expect(decodeRecord(forged, crypto, now)).toContain("bad signature");
  });

  test("garbage and truncations give a reason, never a throw", () => {
    for (let n = 0; n < signed.length; n += 97) expect(typeof decodeRecord(signed.subarray(0, n), crypto, now)).toBe("string");
    expect(decodeRecord(new Uint8Array(9000), crypto, now)).toContain("bytes");
    expect(decodeRecord(crypto.publicBytes, crypto, now)).toBe("not a TRD1 record");
  });

  test("too many relays is refused when encoding", () => {
    expect(() => encodeRecord({ ...fields, relays: Array(MAX_RECORD_RELAYS + 1).fill(R1) }, crypto)).toThrow(RangeError);
  });
});
