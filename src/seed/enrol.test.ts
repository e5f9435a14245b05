// The invite store under abuse: keyed by the enrolment's own hash (padded JSON makes no new entry),
// only served networks, a lifetime cap, a quota per network, and a burn only the token's key can do.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { sign } from "../identity/identity.ts";
import { createNetwork, encodeNetworkInfo, type Root } from "../trust/root.ts";
import { enrolmentKey, issueEnrolment, sha256hex } from "../trust/enrolment.ts";
import { enrolRoutes, MAX_LIFETIME_S, USED_CONTEXT } from "./enrol.ts";

const dir = mkdtempSync(join(tmpdir(), "trellis-enrol-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ours = createNetwork("ours", join(dir, "ours"));
const theirs = createNetwork("theirs", join(dir, "theirs"));
const now = Math.floor(Date.now() / 1000);

function invite(root: Root, usableUntil = now + 3600) {
  const seed = randomBytes(32);
  const enrolment = issueEnrolment({ networkId: root.id, publicKey: enrolmentKey(seed).publicKey, usableUntil, grantsFor: 3600, name: "", ipv4Prefix: 10, tags: [], issuedAt: now, subnets: [] }, root);
  const bundle = JSON.stringify({ network: JSON.parse(encodeNetworkInfo(root)), enrolment: Buffer.from(enrolment).toString("base64") });
  return { seed, enrolment, bundle, hash: sha256hex(enrolment) };
}

const app = enrolRoutes({ scope: { roots: () => new Map([[ours.id, ours.rootPub]]) } });
const put = (hash: string, body: string) => app.request(`/v1/enrol/${hash}`, { method: "PUT", body });

test("one enrolment is one entry, however its JSON is padded; the store serves it canonical", async () => {
  const i = invite(ours);
  expect((await put(i.hash, i.bundle)).status).toBe(200);
  const padded = JSON.stringify({ ...JSON.parse(i.bundle), pad: "x".repeat(5000) });
  expect((await put(i.hash, padded)).status).toBe(200);
  expect((await put(sha256hex(Buffer.from(padded)), padded)).status).toBe(400);
  const got = await (await app.request(`/v1/enrol/${i.hash}`)).text();
  expect(got).toBe(i.bundle);
});

test("invites of a network the seed does not serve are refused before any signature check", async () => {
  const i = invite(theirs);
  const r = await put(i.hash, i.bundle);
  expect(r.status).toBe(403);
  expect(((await r.json()) as { error: string }).error).toContain("does not serve");
  // A bundle naming our network id with another root key is refused too.
  const forged = JSON.stringify({ network: { ...JSON.parse(encodeNetworkInfo(theirs)), id: ours.id }, enrolment: JSON.parse(i.bundle).enrolment });
  expect((await put(i.hash, forged)).status).not.toBe(200);
});

test("an invite usable for years is kept at most MAX_LIFETIME_S; the burn needs the token's key", async () => {
  const i = invite(ours, now + 10 * 365 * 86400);
  expect((await put(i.hash, i.bundle)).status).toBe(200);
  let t = now;
  const clocked = enrolRoutes({ scope: { roots: () => new Map([[ours.id, ours.rootPub]]) }, now: () => t });
  expect((await clocked.request(`/v1/enrol/${i.hash}`, { method: "PUT", body: i.bundle })).status).toBe(200);
  t = now + MAX_LIFETIME_S - 60;
  expect((await clocked.request(`/v1/enrol/${i.hash}`)).status).toBe(200);
  t = now + MAX_LIFETIME_S + 2 * 86400;
  expect((await clocked.request(`/v1/enrol/${i.hash}`)).status).toBe(404);
  const node = "ab".repeat(16);
  const bad = { node, sig: Buffer.from(sign(enrolmentKey(randomBytes(32)) as never, USED_CONTEXT, Buffer.from(node))).toString("base64") };
  expect((await app.request(`/v1/enrol/${i.hash}/used`, { method: "POST", body: JSON.stringify(bad) })).status).toBe(403);
  const good = { node, sig: Buffer.from(sign(enrolmentKey(i.seed) as never, USED_CONTEXT, Buffer.from(node))).toString("base64") };
  expect((await app.request(`/v1/enrol/${i.hash}/used`, { method: "POST", body: JSON.stringify(good) })).status).toBe(200);
  expect((await app.request(`/v1/enrol/${i.hash}`)).status).toBe(409);
});

test("a network's quota: once it holds 256 invites, the next gets 507 and other networks are unaffected", async () => {
  const small = enrolRoutes({ scope: { roots: () => undefined } });
  const i0 = invite(theirs);
  // Fill theirs' quota with distinct signed enrolments (one signing each: keep it quick by reusing a template).
  let stored = 0;
  for (let k = 0; k < 300 && stored < 257; k++) {
    const i = k === 0 ? i0 : invite(theirs, now + 3600 + k);
    const r = await small.request(`/v1/enrol/${i.hash}`, { method: "PUT", body: i.bundle });
    if (r.status === 200) stored++;
    else {
      expect(r.status).toBe(507);
      break;
    }
  }
  expect(stored).toBe(256);
  const o = invite(ours);
  expect((await small.request(`/v1/enrol/${o.hash}`, { method: "PUT", body: o.bundle })).status).toBe(200);
}, 60_000);
