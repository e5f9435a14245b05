// Sessions form when their link comes late: whole member nodes in one process, over in-memory links.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { ipv6BytesOf } from "../identity/address.ts";
import { generateIdentity, type NodeId, type PublicIdentity } from "../identity/identity.ts";
import { parseConfig } from "../config/load.ts";
import { setLogLevel } from "../log.ts";
import { MemoryNet } from "../tether/memory.ts";
import { createMemoryTun, type MemoryTun } from "../tun/memory.ts";
import { issueCertificate } from "../trust/certificate.ts";
import { encodeBundle, Networks } from "../trust/networks.ts";
import { networkIdOf } from "../trust/root.ts";
import type { Hold } from "../datapath/hold.ts";
import type { Sessions } from "../session/sessions.ts";
import { Node } from "./node.ts";

setLogLevel((process.env.TRELLIS_TEST_LOG as "debug") ?? "error");

const ROOT = ml_dsa65.keygen(new Uint8Array(32).fill(91));
const HOME = { name: "home", id: networkIdOf(ROOT.publicKey), rootPub: ROOT.publicKey, dsaSecret: ROOT.secretKey };
const IDS = Array.from({ length: 2 }, (_, i) => generateIdentity(new Uint8Array(128).fill(i + 60)));
const running: Node[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const n of running.splice(0)) await n.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Whole {
  node: Node;
  tun: MemoryTun;
  id: NodeId;
}
type Insides = { sessions: Sessions; hold: Hold; links: { connect(peer: NodeId): void }; peering: { learn(remote: PublicIdentity): void } };
const insides = (w: Whole) => w.node as unknown as Insides;

/** Two members of one network (certificates, no allow-list, no relay, no seed). */
async function start(net: MemoryNet): Promise<Whole[]> {
  const out: Whole[] = [];
  for (const [i, identity] of IDS.entries()) {
    const dir = mkdtempSync(join(tmpdir(), "trellis-liveness-"));
    dirs.push(dir);
    const now = Math.floor(Date.now() / 1000);
    Networks.install(dir, identity.public.id, encodeBundle(HOME, issueCertificate({ networkId: HOME.id, nodeId: identity.public.id, name: `l${i}`, ipv4: `100.64.0.${i + 1}`, ipv4Prefix: 24, tags: [], subnets: [], notBefore: now - 60, notAfter: now + 3600 }, HOME)));
    const config = parseConfig(`[node]\nname = "l${i}"\nstate_dir = "${dir}"\nipv4 = "100.64.0.${i + 1}/24"\n[tun]\nname = "lmem${i}"\n[relay]\nenabled = false\nseed = false\n`, `l${i}.toml`);
    const tun = createMemoryTun(`lmem${i}`, 1500);
    const node = new Node(config, identity, { openTun: async () => tun, links: net.factory() });
    running.push(node);
    out.push({ node, tun, id: identity.public.id });
  }
  for (const w of out) await w.node.start();
  return out;
}

function echo6(a: NodeId, b: NodeId, seq: number): Uint8Array {
  const p = new Uint8Array(48 + 16);
  p[0] = 0x60;
  new DataView(p.buffer).setUint16(4, 8 + 16);
  p[6] = 58;
  p[7] = 64;
  p.set(ipv6BytesOf(a), 8);
  p.set(ipv6BytesOf(b), 24);
  p[40] = 128;
  new DataView(p.buffer).setUint16(46, seq);
  return p;
}

async function until(f: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (f()) return true;
    await Bun.sleep(20);
  }
  return f();
}

// Issue 14 (liveness, 3): a member's packets wait for a link that is slow to form; they expire from the
// hold (HOLD_MS) before it opens, and then nothing started the session (only allow-listed peers got a
// keepalive on a new link) until the application sent again.
for (const lower of [true, false]) {
  test(`a link that opens after the packets held for it expired still starts the session (the sender has the ${lower ? "lower" : "higher"} id)`, async () => {
    const net = new MemoryNet();
    const ws = (await start(net)).sort((x, y) => (x.id < y.id) === lower ? -1 : 1);
    const [a, b] = ws;
    net.cut(a.id, b.id); // the link cannot form yet
    insides(a).peering.learn(IDS.find((i) => i.public.id === b.id)!.public); // a knows b's keys (as from a relay's record)
    a.tun.inject([echo6(a.id, b.id, 1)]);
    await Bun.sleep(20);
    expect(insides(a).hold.has("path", b.id)).toBe(true);
    insides(a).hold.drop("path", b.id); // HOLD_MS passed: what waited is gone
    net.heal(a.id, b.id);
    insides(a).links.connect(b.id); // the link attempt that finally succeeds
    expect(await until(() => insides(a).sessions.isEstablished(b.id) && insides(b).sessions.isEstablished(a.id), 5000)).toBe(true);
  }, 20_000);
}

test("a member link nobody sent anything on starts no session", async () => {
  const net = new MemoryNet();
  const [a, b] = await start(net);
  insides(a).peering.learn(IDS[1].public);
  insides(a).links.connect(b.id);
  await Bun.sleep(600); // past START_LATER_MS and a few ticks
  expect(insides(a).sessions.isEstablished(b.id) || insides(a).sessions.handshaking(b.id)).toBe(false);
  expect(insides(b).sessions.isEstablished(a.id) || insides(b).sessions.handshaking(a.id)).toBe(false);
}, 20_000);
