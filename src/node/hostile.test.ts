// A hostile member floods a victim, whole nodes in one process (issue 14): junk initiations, junk
// first fragments, a valid initiation replayed under fresh forged sources, forged data frames with
// fresh sources and forged unsealed delivery reports, all on the hostile member's real link to the
// victim. Meanwhile an honest member keeps pinging the victim and completes a fresh handshake.
import { afterEach, expect, test } from "bun:test";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { setLogLevel } from "../log.ts";
import { MemoryNet } from "../tether/memory.ts";
import { fragment } from "../handshake/fragment.ts";
import { createInitiation } from "../handshake/machine.ts";
import { encodeForward, relayed, TYPE_REPORT } from "../route/frame.ts";
import type { Sessions } from "../session/sessions.ts";
import type { Router } from "../route/router.ts";
import type { Link } from "../tether/webrtc.ts";
import { encodeHop, HOP_RECORD } from "../route/frame.ts";
import { encodeRecord, type RecordCrypto } from "../route/record.ts";
import { encodePublicIdentity, nodeIdBytes } from "../identity/identity.ts";
import { issueRevocation } from "../trust/revocation.ts";
import { issuePolicy } from "../trust/policy.ts";
import { CONTROL_POLICY, CONTROL_REVOCATION, recordMessage } from "./control.ts";
import type { Admission } from "./admission.ts";
import type { Discovery } from "../route/discovery.ts";
import { answerPings, ping as pingWhole, testNetwork, WholeNodes, type Whole } from "../../test/lib/whole.ts";

setLogLevel((process.env.TRELLIS_TEST_LOG as "debug") ?? "error");

const HOME = testNetwork(77);
const IDS = Array.from({ length: 3 }, (_, i) => generateIdentity(new Uint8Array(128).fill(i + 40)));
const nodes = new WholeNodes();
afterEach(() => nodes.stop());

type Insides = { sessions: Sessions; router: Router & { discovery: Discovery }; links: { link(peer: NodeId): Link | undefined }; admission: Admission };
const insides = (w: Whole) => w.node as unknown as Insides;

/** The three nodes, allow-listing each other; with `root`, also members of its network (certificates). */
const start = (net: MemoryNet, root?: typeof HOME) => nodes.start(net, IDS, { prefix: "h", network: root });

/** An echo request every 10 ms (a small one) until the reply comes, for up to 15 s. */
const ping = (a: Whole, b: Whole, seq: number) => pingWhole(a, b, seq, { timeoutMs: 15_000, everyMs: 10, size: 16 });

const fakeId = (i: number) => (0xd000_0000 + i).toString(16).padStart(32, "0") as NodeId;

test("a hostile member's flood on its link: the honest member keeps pinging and completes a new handshake; the victim keeps no state for forged senders", async () => {
  const [a, v, m] = await start(new MemoryNet());
  answerPings(v);
  await ping(a, v, 1);
  await ping(m, v, 2);
  const link = insides(m).links.link(v.id)!;
  expect(link).toBeDefined();
  const valid = fragment(0xc1, createInitiation(IDS[2], IDS[1].public, new Uint8Array(0), 77, 1n).message);
  const peersBefore = v.node.status().peers.length;
  const vs = insides(v).sessions.stats;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0, seq = 10;
  const frame = (src: NodeId, inner: Uint8Array) => relayed(encodeForward(v.id, src, inner), m.id, true);
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 200; i++, sent++) {
      const k = sent % 5;
      if (k === 0) link.sendControl(Uint8Array.of(0xc1, sent & 255, sent >> 8, 0, 0, 0, 1, 0)); // junk initiation
      else if (k === 1) {
        const g = new Uint8Array(1200).fill(9); // junk first fragment, fresh message id
        g[0] = 0xc1;
        new DataView(g.buffer).setUint32(1, sent, true);
        g[6] = 24;
        link.sendControl(g);
      } else if (k === 2) for (const f of valid) link.sendControl(frame(fakeId(sent), f)); // replayed initiation, forged source
      else if (k === 3) link.sendPacket(frame(fakeId(sent), Uint8Array.of(0xc4, 0, 0, 0, 1, 2, 3, 4, ...new Uint8Array(40)))); // forged data
      else link.sendControl(frame(a.id, Uint8Array.of(TYPE_REPORT, 1, ...new Uint8Array(16), 0, 0x10, 0, 0))); // forged report "from a"
    }
    if (round === 20) insides(a).sessions.close(v.id, "test: rekey under fire"); // a must handshake anew
    if (round % 5 === 0) await ping(a, v, seq++);
    await Bun.sleep(0);
  }
  await ping(a, v, seq++);
  const wall = performance.now() - t0;
  const used = process.cpuUsage(cpu0);
  console.log(`flood: ${sent} hostile frames in ${wall.toFixed(0)} ms (the whole process: ${((used.user + used.system) / 1000).toFixed(0)} ms CPU); victim: ${vs.rxRateLimited} rate-limited, ${vs.cookieRepliesSent} cookie replies, ${vs.handshakeErrors} handshake errors, ${vs.handshakesCompleted} handshakes completed`);
  expect(insides(a).sessions.isEstablished(v.id)).toBe(true);
  expect(v.node.status().peers.length).toBe(peersBefore); // no peer for any forged source
  // Errors: the 2,000 junk initiations (malformed: no budget charged), and the replayed initiation only
  // as often as the link's budget lets it reach the KEM (8 a second, 8 to start with).
  expect(vs.handshakeErrors - sent / 5).toBeLessThanOrEqual(8 + 8 * Math.ceil(wall / 1000) + 2);
}, 120_000);

test("sealed delivery reports do not answer each other: an idle pair goes quiet", async () => {
  const [a, v] = await start(new MemoryNet());
  answerPings(v);
  for (let i = 0; i < 5; i++) await ping(a, v, 100 + i);
  await Bun.sleep(2500); // the reports for the pings go out (once a second), then nothing more
  const tx = () => insides(a).sessions.stats.txData + insides(v).sessions.stats.txData;
  const seen: number[] = [];
  for (let i = 0; i < 6; i++) {
    seen.push(tx());
    await Bun.sleep(1000);
  }
  console.log(`session packets sent by both, each second while idle: ${seen.map((x, i) => (i ? x - seen[i - 1] : x)).join(" ")}`);
  // RTT pings every 5 s and a keepalive are all; reports answering reports would be two or more a second.
  expect(seen[5] - seen[0]).toBeLessThanOrEqual(6);
}, 30_000);

test("a member re-issuing its own record with junk signatures costs the victim its link's budget of signature checks, not one each", async () => {
  const [a, v, m] = await start(new MemoryNet());
  answerPings(v);
  await ping(m, v, 1);
  await ping(a, v, 2);
  // Count the victim's record signature checks.
  const crypto = (insides(v).router.discovery as unknown as { opts: { crypto: RecordCrypto } }).opts.crypto;
  // Counted either way: checked in the runtime (verifyAsync) or in noble (verify).
  const [verify, verifyAsync] = [crypto.verify, crypto.verifyAsync];
  let checks = 0;
  crypto.verify = (...args) => (checks++, verify(...args));
  if (verifyAsync) crypto.verifyAsync = (...args) => (checks++, verifyAsync(...args));
  const link = insides(m).links.link(v.id)!;
  const junk = new Uint8Array(3309).fill(7);
  const t0 = performance.now();
  for (let i = 0; i < 300; i++) {
    const rec = encodeRecord({ id: m.id, relay: false, relays: [], hints: [], issued: Date.now() + i, expires: Date.now() + 5 * 60_000 }, { publicBytes: encodePublicIdentity(IDS[2].public), sign: () => junk, verify: () => false });
    link.sendControl(encodeHop(HOP_RECORD, rec));
  }
  await Bun.sleep(1500);
  const s = (performance.now() - t0) / 1000;
  console.log(`300 re-issued records with junk signatures: ${checks} signature checks in ${s.toFixed(1)} s`);
  // 2 a second for one origin on a link (and its burst of 2): before the budget, 300.
  expect(checks).toBeLessThanOrEqual(2 + Math.ceil(2 * s) + 1);
  expect(checks).toBeGreaterThan(0);
  await ping(a, v, 3); // the victim is fine
}, 60_000);

test("invalid new revocations and policies from a session peer cost at most its link's budget; an honest burst of valid ones all lands", async () => {
  const [a, v, m] = await start(new MemoryNet(), HOME);
  answerPings(v);
  await ping(m, v, 1);
  await ping(a, v, 2);
  const nets = insides(v).admission.networks;
  let checks = 0;
  for (const k of ["addRevocation", "setPolicy"] as const) {
    const orig = (nets[k] as (r: Uint8Array) => unknown).bind(nets);
    (nets as unknown as Record<string, (r: Uint8Array) => unknown>)[k] = (r: Uint8Array) => (checks++, orig(r));
  }
  // Forged: signed once, then a new revoked node or a newer version each, under a junk signature.
  const junkSig = new Uint8Array(3309).fill(5);
  const rev0 = issueRevocation({ networkId: HOME.id, nodeId: fakeId(0), time: Math.floor(Date.now() / 1000), reason: "x" }, { dsaSecret: HOME.dsaSecret });
  const pol0 = issuePolicy({ networkId: HOME.id, version: 1000, rules: [] }, { dsaSecret: HOME.dsaSecret });
  const t0 = performance.now();
  for (let i = 0; i < 150; i++) {
    const rev = Uint8Array.from(rev0);
    rev.set(nodeIdBytes(fakeId(i)), 20);
    rev.set(junkSig, rev.length - junkSig.length);
    insides(m).sessions.send(v.id, recordMessage(CONTROL_REVOCATION, rev));
    const pol = Uint8Array.from(pol0);
    new DataView(pol.buffer).setBigUint64(20, BigInt(1000 + i));
    pol.set(junkSig, pol.length - junkSig.length);
    insides(m).sessions.send(v.id, recordMessage(CONTROL_POLICY, pol));
  }
  await Bun.sleep(1500);
  const s = (performance.now() - t0) / 1000;
  console.log(`300 forged revocations and policies from a session peer: ${checks} signature checks in ${s.toFixed(1)} s`);
  // The link's 20 a second (its burst of 20 first): before the budget, 300.
  expect(checks).toBeLessThanOrEqual(20 + Math.ceil(20 * s) + 2);
  // An honest peer passes on 15 valid revocations at once: every one is taken, and at once.
  const revoked = Array.from({ length: 15 }, (_, i) => fakeId(1000 + i));
  for (const id of revoked) insides(a).sessions.send(v.id, recordMessage(CONTROL_REVOCATION, issueRevocation({ networkId: HOME.id, nodeId: id, time: Math.floor(Date.now() / 1000), reason: "lost" }, { dsaSecret: HOME.dsaSecret })));
  const end = performance.now() + 10_000;
  while (performance.now() < end && !revoked.every((id) => nets.isRevoked(id))) await Bun.sleep(50);
  expect(revoked.filter((id) => !nets.isRevoked(id))).toEqual([]);
}, 60_000);

test("a ping for a full node id nobody told us of, with no relay linked and no seed that has it registered: not found; no peer, no link attempt, no signature", async () => {
  const [a, v] = await start(new MemoryNet(), HOME); // members of one network; nobody relays, no seeds
  answerPings(v);
  await ping(a, v, 1);
  const links = insides(a).links as unknown as { connect(id: NodeId, now?: boolean): void };
  const connect = links.connect.bind(links);
  const asked: NodeId[] = [];
  links.connect = (id, now) => (asked.push(id), connect(id, now));
  const peers = a.node.status().peers.length;
  for (let i = 0; i < 5; i++) await expect(a.node.ping(fakeId(500 + i), 200)).rejects.toThrow(/is not a peer this node knows/);
  expect(asked).toEqual([]);
  expect(a.node.status().peers.length).toBe(peers);
  // A peer it knows is still pinged.
  expect((await a.node.ping(v.id, 5000)).rttMs).not.toBeNull();
}, 30_000);

test("signals through relays from fresh claimed senders cost at most the link's budget of signature checks", async () => {
  const [a, v, m] = await start(new MemoryNet());
  answerPings(v);
  await ping(m, v, 1);
  const links = insides(v).links as unknown as { handleSignal(raw: unknown): void };
  let checks = 0;
  links.handleSignal = () => void checks++; // each signal that gets this far costs one ML-DSA check
  const link = insides(m).links.link(v.id)!;
  const t0 = performance.now();
  for (let i = 0; i < 300; i++) {
    const body = new TextEncoder().encode(JSON.stringify({ v: 1, kind: "offer", from: fakeId(2000 + i), to: v.id, ts: Date.now(), nonce: String(i), pub: "", sig: "" }));
    const inner = new Uint8Array(1 + body.length);
    inner[0] = 0xc7; // TYPE_SIGNAL
    inner.set(body, 1);
    link.sendControl(relayed(encodeForward(v.id, fakeId(2000 + i), inner), m.id, true));
  }
  await Bun.sleep(1500);
  const s = (performance.now() - t0) / 1000;
  console.log(`300 signals from fresh claimed senders on one link: ${checks} reached the signature check in ${s.toFixed(1)} s`);
  // 10 a second per link (its burst of 10 first), whatever sender each claims.
  expect(checks).toBeLessThanOrEqual(10 + Math.ceil(10 * s) + 1);
  expect(checks).toBeGreaterThan(0);
  await ping(a, v, 2);
}, 30_000);
