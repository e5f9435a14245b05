// A hostile member floods a victim, whole nodes in one process (issue 14): junk initiations, junk
// first fragments, a valid initiation replayed under fresh forged sources, forged data frames with
// fresh sources and forged unsealed delivery reports, all on the hostile member's real link to the
// victim. Meanwhile an honest member keeps pinging the victim and completes a fresh handshake.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ipv6BytesOf } from "../identity/address.ts";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { parseConfig } from "../config/load.ts";
import { setLogLevel } from "../log.ts";
import { MemoryNet } from "../tether/memory.ts";
import { createMemoryTun, type MemoryTun } from "../tun/memory.ts";
import { fragment } from "../handshake/fragment.ts";
import { createInitiation } from "../handshake/machine.ts";
import { encodeForward, relayed, TYPE_REPORT } from "../route/frame.ts";
import type { Sessions } from "../session/sessions.ts";
import type { Router } from "../route/router.ts";
import type { Link } from "../tether/webrtc.ts";
import { Node } from "./node.ts";

setLogLevel((process.env.TRELLIS_TEST_LOG as "debug") ?? "error");

const IDS = Array.from({ length: 3 }, (_, i) => generateIdentity(new Uint8Array(128).fill(i + 40)));
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
type Insides = { sessions: Sessions; router: Router; links: { link(peer: NodeId): Link | undefined } };
const insides = (w: Whole) => w.node as unknown as Insides;

async function start(net: MemoryNet): Promise<Whole[]> {
  const out: Whole[] = [];
  for (const [i, identity] of IDS.entries()) {
    const dir = mkdtempSync(join(tmpdir(), "trellis-hostile-"));
    dirs.push(dir);
    const allow = IDS.filter((o) => o !== identity).map((o) => `"${o.public.id}"`).join(", ");
    const config = parseConfig(`[node]\nname = "h${i}"\nstate_dir = "${dir}"\nipv4 = "100.64.0.${i + 1}/24"\n[network]\nallow = [${allow}]\n[tun]\nname = "hmem${i}"\n[relay]\nenabled = false\nseed = false\n`, `h${i}.toml`);
    const tun = createMemoryTun(`hmem${i}`, 1500);
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
function answerPings(w: Whole): void {
  w.tun.onWrite = (p) => {
    if (p[0] >> 4 === 6 && p[6] === 58 && p[40] === 128) {
      const r = Uint8Array.from(p);
      r.set(p.subarray(24, 40), 8);
      r.set(p.subarray(8, 24), 24);
      r[40] = 129;
      w.tun.inject([r]);
    }
  };
}
async function ping(a: Whole, b: Whole, seq: number, timeoutMs = 15_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    const got = a.tun.written.findIndex((p) => p[40] === 129 && new DataView(p.buffer, p.byteOffset).getUint16(46) === seq);
    if (got >= 0) return void a.tun.written.splice(got, 1);
    a.tun.inject([echo6(a.id, b.id, seq)]);
    await Bun.sleep(10);
  }
  throw new Error(`no echo reply for seq ${seq}`);
}

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
