// Sessions form when their link comes late: whole member nodes in one process, over in-memory links.
import { afterEach, expect, test } from "bun:test";
import { generateIdentity, type NodeId, type PublicIdentity } from "../identity/identity.ts";
import { setLogLevel } from "../log.ts";
import { MemoryNet } from "../tether/memory.ts";
import type { Hold } from "../datapath/hold.ts";
import { Sessions as SessionsClass, type Sessions } from "../session/sessions.ts";
import { echo6, testNetwork, WholeNodes, type Whole } from "../../test/lib/whole.ts";
import { until } from "../../test/lib/wait.ts";

setLogLevel((process.env.TRELLIS_TEST_LOG as "debug") ?? "error");

const HOME = testNetwork(91);
const IDS = Array.from({ length: 2 }, (_, i) => generateIdentity(new Uint8Array(128).fill(i + 60)));
const nodes = new WholeNodes();
afterEach(() => nodes.stop());

type Insides = { sessions: Sessions; hold: Hold; links: { connect(peer: NodeId): void }; peering: { learn(remote: PublicIdentity): void } };
const insides = (w: Whole) => w.node as unknown as Insides;

/** Two members of one network (certificates, no allow-list, no relay, no seed). */
const start = (net: MemoryNet) => nodes.start(net, IDS, { prefix: "l", allow: false, network: HOME });

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
    a.tun.inject([echo6(a.id, b.id, 1, 16)]);
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

// Issue 18: the lower id starts the session on a new link; the higher one started its own when none had
// come within 200 ms. A loaded lower id (a relay or member answering a crowd) took longer than that to
// make and send its initiation (~25 ms of ML-DSA idle, a second or more loaded), so both made one: two
// full handshakes on each side where one does.
test("allow-listed peers on a new link make one handshake, not two, when the lower id's initiation is slow to arrive", async () => {
  const [lo, hi] = [...IDS].sort((x, y) => (x.public.id < y.public.id ? -1 : 1));
  const proto = SessionsClass.prototype as unknown as { initiate(this: { opts: { identity: { public: { id: NodeId } }; transmit(to: NodeId, p: Uint8Array): void } }, ...a: unknown[]): void };
  const initiate = proto.initiate;
  proto.initiate = function (...a) {
    const opts = this.opts;
    if (opts.identity.public.id !== lo.public.id) return initiate.apply(this, a);
    const transmit = opts.transmit;
    opts.transmit = (to, p) => void setTimeout(() => transmit(to, p), 700); // its initiation arrives 0.7 s late
    try {
      initiate.apply(this, a);
    } finally {
      opts.transmit = transmit;
    }
  };
  try {
    const net = new MemoryNet();
    const ws = await nodes.start(net, [lo, hi], { prefix: "x", allow: true, network: HOME });
    expect(await until(() => ws.every((w) => ws.every((o) => o === w || insides(w).sessions.isEstablished(o.id))), 8000)).toBe(true);
    await Bun.sleep(500);
    expect(ws.map((w) => insides(w).sessions.stats.handshakesStarted)).toEqual([1, 0]);
  } finally {
    proto.initiate = initiate;
  }
}, 20_000);
