// FallbackLink with in-memory transports and a fake clock: frames take UDP while it answers, the
// WebSocket after STALE_MS of silence, UDP again once it answers; beats go only while both exist; the
// link closes only when both transports are gone; the socket frames round-trip through WsLink.
import { expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { ACTIVE_FOR_MS, BEAT_MS, FallbackLink, IDLE_BEAT_MS, IDLE_STALE_MS, STALE_MS, TYPE_TETHER_BEAT } from "./fallback.ts";
import { TYPE_DATA } from "../session/wire.ts";
import { WsLink, WS_KIND_CONTROL, WS_KIND_PACKET } from "./wslink.ts";
import type { Link } from "./webrtc.ts";

const PEER = "ab".repeat(16) as NodeId;

/**
 * A stand-in WebRTC link: records what is sent, lets the test deliver frames and close it. `rx` delivers
 * a frame that authenticated (DTLS, a tagged frame: the link says alive first); `forge`, bare session data
 * on the fast channel as an on-path host spoofing the pair's addresses sends it (no alive).
 */
function fakeLink() {
  const sent: Uint8Array[] = [];
  const cbs = { packet: [] as ((b: Uint8Array) => void)[], control: [] as ((b: Uint8Array) => void)[], close: [] as ((r: string) => void)[], alive: [] as (() => void)[] };
  const link = {
    peer: PEER,
    state: "open" as "connecting" | "open" | "closed",
    stats: { txPackets: 0, rxPackets: 0, txDropped: 0 },
    fastMtu: 1400,
    fastStats: undefined,
    sendPacket: (b: Uint8Array) => (sent.push(b), true),
    sendProbe: (b: Uint8Array) => (sent.push(b), true),
    sendControl: (b: Uint8Array) => void sent.push(b),
    onPacket: (cb: (b: Uint8Array) => void) => void cbs.packet.push(cb),
    onControl: (cb: (b: Uint8Array) => void) => void cbs.control.push(cb),
    onAlive: (cb: () => void) => void cbs.alive.push(cb),
    onOpen: () => {},
    onClose: (cb: (r: string) => void) => void cbs.close.push(cb),
    close(reason = "closed") {
      if (link.state === "closed") return;
      link.state = "closed";
      for (const cb of cbs.close) cb(reason);
    },
  };
  return {
    link: link as Link,
    sent,
    rx: (b: Uint8Array) => (cbs.alive.forEach((cb) => cb()), cbs.packet.forEach((cb) => cb(b))),
    forge: (b: Uint8Array) => cbs.packet.forEach((cb) => cb(b)),
  };
}

test("UDP while it answers, the WebSocket after STALE_MS of silence, UDP again when it answers", () => {
  let now = 1000;
  const f = new FallbackLink(PEER, () => {}, () => now);
  const udp = fakeLink();
  const wsOut: { frame: Uint8Array; control: boolean }[] = [];
  const ws = new WsLink(PEER, (frame, control) => (wsOut.push({ frame, control }), true));
  f.adopt(udp.link);
  f.attach(ws);
  expect(f.transport).toBe("udp");
  expect(f.fastMtu).toBe(1400);
  f.sendPacket(Uint8Array.of(TYPE_DATA, 2, 3)); // a member packet: the link is active
  expect(udp.sent.at(-1)).toEqual(Uint8Array.of(TYPE_DATA, 2, 3));

  // Silence on UDP: after STALE_MS frames go as WebSocket messages, kind byte first.
  now += STALE_MS + 1;
  f.tick();
  expect(f.transport).toBe("tcp");
  expect(f.fastMtu).toBeUndefined();
  f.sendPacket(Uint8Array.of(4, 5));
  f.sendControl(Uint8Array.of(6));
  expect(wsOut.map((o) => [...o.frame])).toEqual([[WS_KIND_PACKET, 4, 5], [WS_KIND_CONTROL, 6]]);
  expect(wsOut.map((o) => o.control)).toEqual([false, true]);
  // Beats keep going on UDP while both exist, so its return is seen.
  const beats = udp.sent.filter((b) => b.length === 1 && b[0] === TYPE_TETHER_BEAT).length;
  expect(beats).toBeGreaterThan(0);

  // A beat from the far side: UDP is fresh again; beats are not delivered upward.
  const got: number[][] = [];
  f.onPacket((b) => got.push([...b]));
  udp.rx(Uint8Array.of(TYPE_TETHER_BEAT));
  f.tick();
  expect(f.transport).toBe("udp");
  expect(got).toEqual([]);
  expect(f.changes.map((c) => c.to)).toEqual(["tcp", "udp"]);

  // Frames from either transport are delivered.
  udp.rx(Uint8Array.of(9));
  ws.data(Uint8Array.of(WS_KIND_PACKET, 8));
  expect(got).toEqual([[9], [8]]);
});

test("the link stays open while either transport does, and closes when both are gone", () => {
  let now = 0;
  const f = new FallbackLink(PEER, () => {}, () => now);
  const udp = fakeLink();
  const ws = new WsLink(PEER, () => true);
  f.adopt(udp.link);
  f.attach(ws);
  let closed = "";
  f.onClose((r) => (closed = r));
  udp.link.close("peer connection failed");
  expect(f.state).toBe("open");
  expect(f.transport).toBe("tcp");
  ws.close("seed socket closed");
  expect(f.state).toBe("closed");
  expect(closed).toBe("seed socket closed");
  // Without a WebSocket, a UDP link's close is the link's close (as before tethers).
  const g = new FallbackLink(PEER, () => {}, () => now);
  const u2 = fakeLink();
  g.adopt(u2.link);
  expect(g.transport).toBe("udp");
  u2.link.close("gone");
  expect(g.state).toBe("closed");
});

// A relay restarted: the socket to it closed and its UDP went silent with it; when the new process takes
// our registration, the old link must not be revived on its stale UDP transport (links.ts closes it).
test("a link whose WebSocket went and whose UDP fell silent with it is orphaned; one whose UDP answers after is not", () => {
  let now = 1000;
  const f = new FallbackLink(PEER, () => {}, () => now);
  const udp = fakeLink();
  const ws = new WsLink(PEER, () => true);
  f.adopt(udp.link);
  f.attach(ws);
  expect(f.orphaned()).toBe(false);
  now += 2000;
  ws.close("seed socket closed");
  expect(f.state).toBe("open"); // UDP may still answer
  expect(f.orphaned()).toBe(false); // too early to tell
  now += 100;
  udp.rx(Uint8Array.of(TYPE_TETHER_BEAT)); // in flight from the dying peer
  now += STALE_MS;
  expect(f.orphaned()).toBe(true);
  // A live peer answers the probes that go when the socket does, past STALE_MS.
  const g = new FallbackLink(PEER, () => {}, () => now);
  const u2 = fakeLink(), w2 = new WsLink(PEER, () => true);
  g.adopt(u2.link);
  g.attach(w2);
  w2.close("seed socket closed");
  for (let t = 0; t < 900; t += 150) {
    now += 150;
    u2.rx(Uint8Array.of(TYPE_TETHER_BEAT));
  }
  now += 3000;
  expect(g.orphaned()).toBe(false);
});

test("a WebSocket that refuses (queue full) counts a drop; garbage frames are ignored", () => {
  const f = new FallbackLink(PEER, () => {}, () => 0);
  const ws = new WsLink(PEER, () => false);
  f.attach(ws);
  expect(f.sendPacket(Uint8Array.of(1))).toBe(false);
  expect(f.stats.txDropped).toBe(1);
  const got: Uint8Array[] = [];
  f.onPacket((b) => got.push(b));
  ws.data(new Uint8Array(0));
  ws.data(Uint8Array.of(WS_KIND_PACKET));
  ws.data(Uint8Array.of(7, 1, 2));
  expect(got).toEqual([]);
});

test("idle, beats go every IDLE_BEAT_MS and UDP goes stale after IDLE_STALE_MS, on the node's beat timer; the first packet makes it active again", () => {
  let now = 1000;
  const f = new FallbackLink(PEER, () => {}, () => now);
  const udp = fakeLink();
  f.adopt(udp.link);
  f.attach(new WsLink(PEER, () => true));
  const beats = () => udp.sent.filter((b) => b.length === 1 && b[0] === TYPE_TETHER_BEAT).length;
  const run = (ms: number, answer: boolean) => {
    for (const end = now + ms; now < end; ) {
      now += BEAT_MS;
      // The far side beats every IDLE_BEAT_MS.
      if (answer && Math.floor(now / IDLE_BEAT_MS) !== Math.floor((now - BEAT_MS) / IDLE_BEAT_MS)) udp.rx(Uint8Array.of(TYPE_TETHER_BEAT));
      f.beat(); // the node's timer: an idle link is ticked only when a beat or its staleness is due
    }
  };
  run(4 * IDLE_BEAT_MS, true);
  expect(beats()).toBeGreaterThanOrEqual(3);
  expect(beats()).toBeLessThanOrEqual(6);
  expect(f.transport).toBe("udp");
  // Active: something goes on UDP every BEAT_MS (a beat when nothing else did).
  const before = beats();
  f.sendPacket(Uint8Array.of(TYPE_DATA, 1));
  expect(beats()).toBe(before); // the packet itself went on UDP: no beat needed now
  run(1500, true);
  expect(beats() - before).toBeGreaterThanOrEqual(1500 / BEAT_MS - 2);
  // UDP dies while idle: stale after IDLE_STALE_MS, not STALE_MS.
  run(ACTIVE_FOR_MS, true);
  const quietFrom = now;
  run(STALE_MS + BEAT_MS, false);
  expect(f.transport).toBe("udp");
  run(IDLE_STALE_MS, false);
  expect(f.transport).toBe("tcp");
  expect(now - quietFrom).toBeLessThanOrEqual(IDLE_STALE_MS + STALE_MS + 2 * BEAT_MS + IDLE_BEAT_MS);
});

test("a link that wakes after UDP died unnoticed moves to the WebSocket within STALE_MS of its first packet", () => {
  let now = 1000;
  const f = new FallbackLink(PEER, () => {}, () => now);
  const udp = fakeLink();
  f.adopt(udp.link);
  f.attach(new WsLink(PEER, () => true));
  now += ACTIVE_FOR_MS + 1000;
  udp.rx(Uint8Array.of(TYPE_TETHER_BEAT)); // last heard
  now += IDLE_BEAT_MS - 100; // idle and still fresh
  f.tick();
  expect(f.transport).toBe("udp");
  f.sendPacket(Uint8Array.of(TYPE_DATA, 1));
  const woke = now;
  expect(f.transport).toBe("udp");
  while (f.transport === "udp") {
    now += 50;
    f.tick();
  }
  expect(now - woke).toBeGreaterThanOrEqual(STALE_MS);
  expect(now - woke).toBeLessThanOrEqual(STALE_MS + 50);
});

// Issue 14: an on-path host spoofing the pair's 5-tuple can send bare session data on the fast channel
// (its AEAD is checked only end to end, after the link). It must not make a dead UDP link look alive,
// nor keep a restarted peer's stale link from being replaced (orphaned()).
test("forged session data on the fast channel is no sign of life: the link goes stale and orphaned under it", () => {
  let now = 1000;
  const f = new FallbackLink(PEER, () => {}, () => now);
  const udp = fakeLink();
  const ws = new WsLink(PEER, () => true);
  f.adopt(udp.link);
  f.attach(ws);
  const got: number[][] = [];
  f.onPacket((b) => got.push([...b]));
  f.sendPacket(Uint8Array.of(TYPE_DATA, 1)); // active
  const forged = Uint8Array.of(TYPE_DATA, 0xee, 0xee);
  // The peer's UDP went silent; the spoofer sends every 50 ms.
  for (let t = 0; t < 2 * STALE_MS; t += 50) {
    now += 50;
    udp.forge(forged);
    f.tick();
  }
  expect(f.transport).toBe("tcp");
  expect(got.length).toBeGreaterThan(0); // still handed up, for the session to refuse
  // The peer's socket goes (it restarted); the spoofer keeps on: the link is orphaned all the same.
  ws.close("seed socket closed");
  for (let t = 0; t < 2 * STALE_MS; t += 50) {
    now += 50;
    udp.forge(forged);
  }
  expect(f.orphaned()).toBe(true);
  // Anything that authenticated is life again.
  udp.rx(Uint8Array.of(TYPE_TETHER_BEAT));
  now += STALE_MS;
  expect(f.orphaned()).toBe(false);
});

test("idle, the fast channel's own probes and answers count as UDP sent: no beats while they go; without them its probe is the beat", () => {
  let now = 1000, sinceProbe = Infinity, lightBeats = 0;
  const f = new FallbackLink(PEER, () => {}, () => now);
  const udp = fakeLink();
  Object.defineProperty(udp.link, "sinceFastProbe", { get: () => sinceProbe });
  f.adopt(udp.link);
  f.attach(new WsLink(PEER, () => true));
  const beats = () => udp.sent.filter((b) => b.length === 1 && b[0] === TYPE_TETHER_BEAT).length;
  const run = (ms: number, exchanges: boolean) => {
    for (const end = now + ms; now < end; ) {
      now += BEAT_MS;
      sinceProbe += BEAT_MS;
      // An idle exchange every ~17.5 s: this side sent the probe or the answer.
      if (exchanges && now % 17_500 < BEAT_MS) (sinceProbe = 0, udp.rx(Uint8Array.of(0)));
      f.beat();
    }
  };
  run(ACTIVE_FOR_MS + 1000, true);
  const before = beats();
  run(6 * IDLE_BEAT_MS, true);
  expect(beats()).toBe(before);
  expect(f.transport).toBe("udp");
  // No exchanges (the fast channel idle and silent): a beat within IDLE_BEAT_MS, through its probe when it takes one.
  (udp.link as unknown as { probeIdle: () => boolean }).probeIdle = () => (lightBeats++, (sinceProbe = 0), true);
  run(2 * IDLE_BEAT_MS, false);
  expect(lightBeats).toBeGreaterThanOrEqual(1);
  expect(beats()).toBe(before);
});

