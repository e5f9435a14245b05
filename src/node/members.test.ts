// Member lookups: who may learn which node holds an IPv4 address or name, the query's wire form, and
// the bounds on what waits for an answer.
import { describe, expect, test } from "bun:test";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { issueCertificate, type Membership } from "../trust/certificate.ts";
import { networkIdOf } from "../trust/root.ts";
import { answerQuery, certFor, decodeQuery, encodeQuery, WAITS, MemberForwards, MemberWaits, type KnownMember } from "./members.ts";

const k1 = ml_dsa65.keygen(new Uint8Array(32).fill(1)), k2 = ml_dsa65.keygen(new Uint8Array(32).fill(2));
const lab = { name: "lab", id: networkIdOf(k1.publicKey), rootPub: k1.publicKey, dsaSecret: k1.secretKey };
const other = { name: "other", id: networkIdOf(k2.publicKey), rootPub: k2.publicKey, dsaSecret: k2.secretKey };
const ids = [3, 4, 5].map((i) => generateIdentity(new Uint8Array(128).fill(i)).public.id);
const now = Math.floor(Date.now() / 1000);
const membership = (networkId: string, nodeId: NodeId, name: string, ipv4: string, notAfter = now + 3600): Membership =>
  ({ networkId, nodeId, name, ipv4, ipv4Prefix: 24, tags: [], subnets: [], notBefore: now - 60, notAfter });
const known = (m: Membership, root: typeof lab): KnownMember => ({ membership: m, cert: issueCertificate(m, root) });

const b = known(membership(lab.id, ids[0], "b", "100.64.0.3"), lab);
const expired = known(membership(lab.id, ids[1], "old", "100.64.0.7", now - 10), lab);
const elsewhere = known(membership(other.id, ids[2], "y", "100.64.0.9"), other);
const all = [b, expired, elsewhere];
const notRevoked = () => false;

describe("member lookups", () => {
  test("queries round-trip; malformed ones decode to nothing", () => {
    expect(decodeQuery(encodeQuery({ ipv4: "100.64.0.3" }))).toEqual({ ipv4: "100.64.0.3" });
    expect(decodeQuery(encodeQuery({ name: "b" }))).toEqual({ name: "b" });
    expect(decodeQuery(Uint8Array.of(4, 1, 2, 3))).toBeUndefined();
    expect(decodeQuery(Uint8Array.of(1, 0x41))).toBeUndefined(); // "A": not a DNS label
    expect(decodeQuery(Uint8Array.of(9, 1, 2, 3, 4))).toBeUndefined();
    expect(decodeQuery(new Uint8Array(0))).toBeUndefined();
    expect(() => encodeQuery({ name: "Not A Label" })).toThrow();
  });

  test("a member of the network learns the holder's certificate, by IPv4 or by name", () => {
    expect(answerQuery({ ipv4: "100.64.0.3" }, [lab.id], all, notRevoked)).toBe(b.cert);
    expect(answerQuery({ name: "b" }, [lab.id], all, notRevoked)).toBe(b.cert);
  });

  test("a non-member learns nothing; a member of another network learns nothing of this one", () => {
    expect(answerQuery({ ipv4: "100.64.0.3" }, [], all, notRevoked)).toBeUndefined();
    expect(answerQuery({ name: "b" }, [], all, notRevoked)).toBeUndefined();
    expect(answerQuery({ ipv4: "100.64.0.3" }, [other.id], all, notRevoked)).toBeUndefined();
    // ...but is answered within its own network, and only there.
    expect(answerQuery({ ipv4: "100.64.0.9" }, [other.id], all, notRevoked)).toBe(elsewhere.cert);
    expect(answerQuery({ ipv4: "100.64.0.9" }, [lab.id], all, notRevoked)).toBeUndefined();
  });

  test("routers (members granted subnets) are named by index, only within the asker's network", () => {
    const r = known({ ...membership(lab.id, ids[1], "r1", "100.64.0.11"), subnets: [{ family: 4, address: "192.168.50.0", prefix: 24 }] }, lab);
    const ry = known({ ...membership(other.id, ids[2], "ry", "100.64.0.12"), subnets: [{ family: 4, address: "10.0.0.0", prefix: 8 }] }, other);
    const list = [b, ry, r, elsewhere];
    expect(decodeQuery(encodeQuery({ router: 3 }))).toEqual({ router: 3 });
    expect(decodeQuery(Uint8Array.of(2, 200))).toBeUndefined();
    expect(answerQuery({ router: 0 }, [lab.id], list, notRevoked)).toBe(r.cert);
    expect(answerQuery({ router: 1 }, [lab.id], list, notRevoked)).toBeUndefined();
    expect(answerQuery({ router: 0 }, [other.id], list, notRevoked)).toBe(ry.cert);
    expect(answerQuery({ router: 0 }, [], list, notRevoked)).toBeUndefined();
  });

  test("expired and revoked holders are never named", () => {
    expect(answerQuery({ ipv4: "100.64.0.7" }, [lab.id], all, notRevoked)).toBeUndefined();
    expect(answerQuery({ ipv4: "100.64.0.3" }, [lab.id], all, (_n, id) => id === ids[0])).toBeUndefined();
  });

  test("certFor picks the certificate of the asked network out of what a peer presented", () => {
    const presented = [Buffer.from(elsewhere.cert).toString("base64"), "garbage!", Buffer.from(b.cert).toString("base64")];
    expect(certFor(presented, lab.id, ids[0])).toEqual(b.cert);
    expect(certFor(presented, lab.id, ids[2])).toBeUndefined(); // not that node's
    expect(certFor(["garbage"], lab.id, ids[0])).toBeUndefined();
  });

  test("packets held for an address are wanted: an answer for it is taken", () => {
    const held = new Set<string>();
    const w = new MemberWaits((ipv4) => held.has(ipv4));
    expect(w.wants(b.membership)).toBe(false);
    held.add("100.64.0.3");
    expect(w.wants(b.membership)).toBe(true);
    expect(w.wants(elsewhere.membership)).toBe(false);
  });

  test("an answer is wanted only for what was asked; waiters wake on it", async () => {
    const w = new MemberWaits(() => false);
    expect(w.wants(b.membership)).toBe(false);
    const waited = w.wait({ name: "b" }, 5000);
    expect(w.wants(b.membership)).toBe(true);
    expect(w.pending()).toEqual([{ name: "b" }]);
    const t0 = performance.now();
    w.answered(b.membership);
    await waited;
    expect(performance.now() - t0).toBeLessThan(100);
    expect(w.wants(b.membership)).toBe(false);
    const byIp = w.wait({ ipv4: "100.64.0.3" }, 5000);
    expect(w.wants(b.membership)).toBe(true);
    w.answered(b.membership);
    await byIp;
  });

  test("a relay passes a lookup on once, and hands the answer to every neighbour that asked (bounded, for a while)", () => {
    let t = 0;
    const f = new MemberForwards(() => t);
    expect(f.add({ ipv4: "100.64.0.3" }, ids[1])).toBe(true);
    expect(f.add({ ipv4: "100.64.0.3" }, ids[2])).toBe(false); // already out: the asker just waits too
    expect(f.take(elsewhere.membership)).toEqual([]);
    expect(f.take(b.membership).sort()).toEqual([ids[1], ids[2]].sort());
    expect(f.take(b.membership)).toEqual([]); // told once
    expect(f.add({ name: "b" }, ids[1])).toBe(true);
    t = MemberForwards.FORWARD_MS + 1;
    expect(f.take(b.membership)).toEqual([]); // too late: forgotten
    expect(f.add({ name: "b" }, ids[1])).toBe(true); // and asked again
    for (let i = 1; i < WAITS; i++) f.add({ ipv4: `10.1.${i >> 8}.${i & 255}` }, ids[0]);
    expect(f.add({ ipv4: "10.9.9.9" }, ids[0])).toBe(false); // full
  });
});
