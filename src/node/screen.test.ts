// Signals from non-members cost no signature check (issue 14): the admission screen runs before the
// signal's signature, from what the node holds (src/node/admission.ts screen, src/signal/messages.ts).
// Counted: calls of ML-DSA verify while a node takes junk signals, with the screen and without it.
import { afterAll, expect, test } from "bun:test";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaults } from "../config/schema.ts";
import { generateIdentity } from "../identity/identity.ts";
import { makeSignal, SignalError, SignalVerifier } from "../signal/messages.ts";
import { issueCertificate, type Membership } from "../trust/certificate.ts";
import { encodeBundle, Networks } from "../trust/networks.ts";
import { networkIdOf } from "../trust/root.ts";
import { Admission } from "./admission.ts";
import { verifies as count } from "../../test/lib/verifies.ts";

const k = ml_dsa65.keygen(new Uint8Array(32).fill(5));
const root = { name: "home", id: networkIdOf(k.publicKey), rootPub: k.publicKey, dsaSecret: k.secretKey };
const self = generateIdentity(new Uint8Array(128).fill(31));
const member = generateIdentity(new Uint8Array(128).fill(32));
const now = Math.floor(Date.now() / 1000);
const membership = (nodeId: string, name: string): Membership => ({ networkId: root.id, nodeId: nodeId as never, name, ipv4Prefix: 10, tags: [], subnets: [], notBefore: now - 60, notAfter: now + 86400 });
const b64 = (c: Uint8Array) => Buffer.from(c).toString("base64");
const dir = mkdtempSync(join(tmpdir(), "trellis-screen-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
Networks.install(dir, self.public.id, encodeBundle(root, issueCertificate(membership(self.public.id, "self"), root)));

function victim() {
  const config = defaults(null);
  config.node.stateDir = dir;
  const admission = new Admission(config, self.public.id, () => {});
  return { admission, screened: new SignalVerifier(self.public.id, Date.now, (from, certs) => admission.screen(from, certs)), plain: new SignalVerifier(self.public.id) };
}

/** What a hostile relay sends: validly signed signals from identities it made up, without a certificate or with a forged one. */
const strangers = Array.from({ length: 8 }, (_, i) => generateIdentity(new Uint8Array(128).fill(100 + i)));
const realCert = b64(issueCertificate(membership(member.public.id, "laptop"), root));
function forged(id: string): string {
  // A member's certificate with the node id swapped: well-formed, for our network, naming the sender; its root signature is wrong.
  const c = Buffer.from(realCert, "base64");
  const m = issueCertificate(membership(id, "laptop"), { dsaSecret: new Uint8Array(k.secretKey.length) } as never);
  return b64(Buffer.concat([m.subarray(0, m.length - 3309), c.subarray(c.length - 3309)]));
}


function take(v: SignalVerifier, raw: unknown): string {
  try {
    v.verify(raw);
    return "ok";
  } catch (e) {
    return (e as SignalError).code;
  }
}

test("junk signals from identities that are no member cost no signature check; a forged certificate costs one per identity, once", () => {
  const { admission, screened, plain } = victim();
  const bare = strangers.map((s) => makeSignal(s, "offer", self.public.id, "v=0", Date.now()));
  const withForged = strangers.map((s) => makeSignal(s, "offer", self.public.id, "v=0", Date.now(), [forged(s.public.id)]));
  const again = strangers.map((s) => makeSignal(s, "knock", self.public.id, undefined, Date.now(), [forged(s.public.id)]));
  // Without the screen (as before): each junk signal costs its signature check, then admission refuses it.
  const before = count(() => bare.forEach((e) => take(plain, e)));
  expect(before).toBe(strangers.length);
  // With it: nothing for signals without a certificate of ours naming the sender.
  const codes: string[] = [];
  expect(count(() => bare.forEach((e) => codes.push(take(screened, e))))).toBe(0);
  expect(new Set(codes)).toEqual(new Set(["not-admitted"]));
  // A forged certificate: its root signature is checked once per identity, and the refusal remembered.
  expect(count(() => withForged.forEach((e) => take(screened, e)))).toBe(strangers.length);
  expect(count(() => again.forEach((e) => take(screened, e)))).toBe(0);
  expect(admission.memberships.size).toBe(0);
  console.log(`[screen] ${strangers.length} junk signals: ${before} signature checks before, 0 after; with a forged certificate ${strangers.length} (one per identity), then 0`);
}, 60_000);

test("a member's signal passes: its certificate is checked once across signal and admission, its signal's signature each time", () => {
  const { admission, screened } = victim();
  const sig = () => makeSignal(member, "offer", self.public.id, "v=0", Date.now(), [realCert]);
  expect(count(() => expect(take(screened, sig())).toBe("ok"))).toBe(2); // the certificate, then the signal
  expect(count(() => expect(admission.admit(member.public, [realCert])).toBe(true))).toBe(0); // not again at accept()
  expect(count(() => expect(take(screened, sig())).toBe("ok"))).toBe(1); // a known member: its signal's signature only
  // The same member's id with someone else's key is still refused by the signal's own signature.
  const e = { ...sig(), sig: b64(new Uint8Array(3309)) };
  expect(count(() => expect(take(screened, e)).toBe("bad-signature"))).toBe(1);
});

test("someone else's forged certificate in a member's name does not shut the member out", () => {
  const { screened } = victim();
  // A hostile relay signs a signal with its own key, claiming the member's id, with a forged certificate
  // naming that id: the certificate's check fails (one check) and is remembered...
  const mallory = strangers[0];
  const memberPub = makeSignal(member, "knock", self.public.id, undefined, Date.now()).pub; // public: any signal of the member shows it
  const c = Buffer.from(realCert, "base64"), body = issueCertificate(membership(member.public.id, "mallory"), { dsaSecret: new Uint8Array(k.secretKey.length) } as never);
  const fake = b64(Buffer.concat([body.subarray(0, body.length - 3309), c.subarray(c.length - 3309)])); // names the member, another name, a wrong root signature
  const spoof = { ...makeSignal(mallory, "offer", self.public.id, "v=0", Date.now(), [fake]), from: member.public.id, pub: memberPub };
  expect(count(() => expect(take(screened, spoof)).toBe("not-admitted"))).toBe(1);
  expect(count(() => expect(take(screened, spoof)).toBe("not-admitted"))).toBe(0);
  // ...for that certificate only: the member's own signal with its real certificate is checked and passes
  // (before, the refusal was kept by id: the member was refused unchecked for a minute, again at each spoof).
  const real = makeSignal(member, "offer", self.public.id, "v=0", Date.now(), [realCert]);
  expect(count(() => expect(take(screened, real)).toBe("ok"))).toBe(2);
});
