// Networks: the checks on a peer's certificates (network, node, signature, expiry, revocation), and
// revocations and policies received from anyone: verified, stored on disk, handed on, kept after a restart.
import { afterAll, describe, expect, test } from "bun:test";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { issueCertificate, type Membership } from "./certificate.ts";
import { encodeBundle, Networks } from "./networks.ts";
import { issuePolicy } from "./policy.ts";
import { issueRevocation } from "./revocation.ts";
import { networkIdOf } from "./root.ts";

const k1 = ml_dsa65.keygen(new Uint8Array(32).fill(31)), k2 = ml_dsa65.keygen(new Uint8Array(32).fill(32));
const home = { name: "home", id: networkIdOf(k1.publicKey), rootPub: k1.publicKey, dsaSecret: k1.secretKey };
const work = { name: "work", id: networkIdOf(k2.publicKey), rootPub: k2.publicKey, dsaSecret: k2.secretKey };
const self = generateIdentity(new Uint8Array(128).fill(41)).public.id;
const peer = generateIdentity(new Uint8Array(128).fill(42)).public.id;
const third = generateIdentity(new Uint8Array(128).fill(43)).public.id;
const now = Math.floor(Date.now() / 1000);

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function membership(root: { id: string }, nodeId: NodeId, over: Partial<Membership> = {}): Membership {
  return { networkId: root.id, nodeId, name: `n-${nodeId.slice(0, 4)}`, ipv4: "100.64.0.9", ipv4Prefix: 24, tags: [], subnets: [], notBefore: now - 60, notAfter: now + 3600, ...over };
}
const b64 = (c: Uint8Array) => Buffer.from(c).toString("base64");
/** A state directory where `self` is a member of `root`'s network. */
function stateIn(root: typeof home): string {
  const d = mkdtempSync(join(tmpdir(), "trellis-networks-"));
  dirs.push(d);
  Networks.install(d, self, encodeBundle(root, issueCertificate(membership(root, self), root)));
  return d;
}

describe("Networks.check: what a peer's certificates prove", () => {
  const state = stateIn(home);
  const nets = new Networks(state, self);
  const good = b64(issueCertificate(membership(home, peer), home));

  test("a certificate from our network's root for that node is accepted", () => {
    const r = nets.check(peer, [good]);
    expect(typeof r).toBe("object");
    if (typeof r === "object") expect(r.membership.nodeId).toBe(peer);
  });

  test("another network's certificate is refused, even when valid there", () => {
    const r = nets.check(peer, [b64(issueCertificate(membership(work, peer), work))]);
    expect(r).toBe(`node ${peer} shows no certificate of a network this node is in`);
  });

  test("a certificate naming our network but signed by another root is refused as unsigned", () => {
    const r = nets.check(peer, [b64(issueCertificate(membership(home, peer), work))]);
    expect(r).toMatch(/not signed by the root/);
  });

  test("another node's certificate does not admit this one", () => {
    expect(nets.check(third, [good])).toMatch(new RegExp(`names node ${peer}, not ${third}`));
  });

  test("expired and not-yet-valid certificates are refused; the same certificate passes inside its window", () => {
    const c = b64(issueCertificate(membership(home, peer, { notBefore: now - 100, notAfter: now + 100 }), home));
    expect(typeof nets.check(peer, [c], now)).toBe("object");
    expect(nets.check(peer, [c], now + 101)).toMatch(/expired/);
    expect(nets.check(peer, [c], now - 101)).toMatch(/valid from/);
  });

  test("a revoked node is refused with a certificate that is otherwise good; others are not affected", () => {
    const d = stateIn(home);
    const n = new Networks(d, self);
    const other = b64(issueCertificate(membership(home, third), home));
    expect(n.addRevocation(issueRevocation({ networkId: home.id, nodeId: peer, time: now, reason: "lost laptop" }, home))?.nodeId).toBe(peer);
    expect(n.check(peer, [good])).toMatch(new RegExp(`node ${peer} is revoked in network home`));
    expect(n.isRevoked(peer)).toBe(true);
    expect(typeof n.check(third, [other])).toBe("object");
  });

  test("a node in no network refuses everyone; garbage certificates are refused, not thrown", () => {
    const empty = mkdtempSync(join(tmpdir(), "trellis-networks-"));
    dirs.push(empty);
    expect(new Networks(empty, self).check(peer, [good])).toBe("this node is in no network");
    expect(typeof nets.check(peer, ["@@@", "", b64(new Uint8Array(5000))])).toBe("string");
  });

  test("a tampered certificate is refused", () => {
    const t = Buffer.from(good, "base64");
    t[60] ^= 1;
    expect(typeof nets.check(peer, [t.toString("base64")])).toBe("string");
  });
});

describe("our own certificates, loaded from the state directory", () => {
  test("a tampered certificate, or another node's, on disk is not loaded (never presented), and the log says why", () => {
    for (const [what, patch] of [
      ["tampered", (c: Uint8Array) => void (c[60] ^= 1)],
      ["another node's", null],
    ] as const) {
      const d = stateIn(home);
      const file = join(d, "networks", home.id, "member.cert");
      let cert: Uint8Array = Uint8Array.from(Buffer.from(readFileSync(file, "utf8").trim(), "base64"));
      if (patch) patch(cert);
      else cert = issueCertificate(membership(home, peer), home);
      writeFileSync(file, Buffer.from(cert).toString("base64"));
      const logs: string[] = [];
      const n = new Networks(d, self, (_l, m) => logs.push(m));
      expect(n.members.length).toBe(0);
      expect(n.proofs()).toEqual([]);
      expect(logs.join("\n")).toMatch(new RegExp(`network ${home.id}: not loaded`));
      expect(what).toBeTruthy();
    }
  });
});

describe("revocations received from anyone", () => {
  const rev = issueRevocation({ networkId: home.id, nodeId: peer, time: now, reason: "stolen" }, home);

  test("one signed by our root is stored on disk, handed on, and still known after a restart", () => {
    const d = stateIn(home);
    const n = new Networks(d, self);
    expect(n.addRevocation(rev)?.nodeId).toBe(peer);
    expect(n.addRevocation(rev)).toBeUndefined(); // known: not new, so not gossiped again
    expect(n.revocationRecords()).toEqual([rev]);
    expect(readdirSync(join(d, "networks", home.id, "revoked"))).toEqual([`${peer}.rev`]);
    const again = new Networks(d, self);
    expect(again.isRevoked(peer)).toBe(true);
    expect(again.revocationRecords().map((r) => b64(r))).toEqual([b64(rev)]);
  });

  test("one signed by another root, for another network, or tampered, is neither kept nor handed on", () => {
    const d = stateIn(home);
    const n = new Networks(d, self);
    const forged = issueRevocation({ networkId: home.id, nodeId: peer, time: now, reason: "x" }, work);
    const otherNet = issueRevocation({ networkId: work.id, nodeId: peer, time: now, reason: "x" }, work);
    const tampered = Uint8Array.from(rev);
    tampered[25] ^= 1; // the node id: now it names someone else
    for (const r of [forged, otherNet, tampered, new Uint8Array(10)]) expect(n.addRevocation(r)).toBeUndefined();
    expect(n.isRevoked(peer)).toBe(false);
    expect(n.revocationRecords()).toEqual([]);
    expect(() => readdirSync(join(d, "networks", home.id, "revoked"))).toThrow();
  });
});

describe("policies received from anyone", () => {
  const p1 = issuePolicy({ networkId: home.id, version: 1, rules: [{ from: "*", to: "*" }] }, home);
  const p2 = issuePolicy({ networkId: home.id, version: 2, rules: [{ from: "a", to: "b", proto: "tcp", ports: "22" }] }, home);

  test("a newer one signed by our root is installed, stored, handed on and kept; an older one is not", () => {
    const d = stateIn(home);
    const n = new Networks(d, self);
    expect(n.setPolicy(p2)).toEqual({ network: "home", version: 2 });
    expect(n.setPolicy(p1)).toBeUndefined();
    expect(n.setPolicy(p2)).toBeUndefined();
    expect(n.policyRecords()).toEqual([p2]);
    const again = new Networks(d, self);
    expect(again.member(home.id)?.firewall?.policy.version).toBe(2);
  });

  test("one signed by another root is refused", () => {
    const n = new Networks(stateIn(home), self);
    expect(n.setPolicy(issuePolicy({ networkId: home.id, version: 9, rules: [] }, work))).toBeUndefined();
    expect(n.policyRecords()).toEqual([]);
    expect(n.member(home.id)?.firewall).toBeUndefined();
  });
});

// Issue 14, 6: re-sent revocations and policies ran an ML-DSA verification (~3.7 ms) each before the
// "already known" check, so ~270 re-sends a second kept a core busy. Known ones now cost no signature check.
describe("re-sent records cost no signature check", () => {
  test("a known revocation and a policy no newer than ours are dropped before verifying", () => {
    const n = new Networks(stateIn(home), self);
    const rev = issueRevocation({ networkId: home.id, nodeId: third, time: now, reason: "x" }, home);
    const pol = issuePolicy({ networkId: home.id, version: 5, rules: [] }, home);
    let t = performance.now();
    expect(n.addRevocation(rev)?.nodeId).toBe(third);
    expect(n.setPolicy(pol)?.version).toBe(5);
    const firstTwo = performance.now() - t; // two verifications
    t = performance.now();
    for (let i = 0; i < 200; i++) {
      expect(n.addRevocation(rev)).toBeUndefined();
      expect(n.setPolicy(pol)).toBeUndefined();
    }
    // 400 verifications would take ~200× the first two; without any, far less than 20×.
    expect(performance.now() - t).toBeLessThan(firstTwo * 20);
  });
});
