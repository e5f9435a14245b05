// FallbackLink with in-memory transports and a fake clock: frames take UDP while it answers, the
// WebSocket after STALE_MS of silence, UDP again once it answers; beats go only while both exist; the
// link closes only when both transports are gone; the socket frames round-trip through WsLink.
import { expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { FallbackLink, STALE_MS, TYPE_TETHER_BEAT } from "./fallback.ts";
import { WsLink, WS_KIND_CONTROL, WS_KIND_PACKET } from "./wslink.ts";
import type { Link } from "./webrtc.ts";

const PEER = "ab".repeat(16) as NodeId;

/** A stand-in WebRTC link: records what is sent, lets the test deliver frames and close it. */
function fakeLink() {
  const sent: Uint8Array[] = [];
  const cbs = { packet: [] as ((b: Uint8Array) => void)[], control: [] as ((b: Uint8Array) => void)[], close: [] as ((r: string) => void)[] };
  const link = {
    peer: PEER,
    state: "open" as "connecting" | "open" | "closed",
    stats: { txPackets: 0, rxPackets: 0, txDropped: 0 },
    fastMtu: 1400,
    fastStats: undefined,
    sendPacket: (b: Uint8Array) => (sent.push(b), true),
    sendControl: (b: Uint8Array) => void sent.push(b),
    onPacket: (cb: (b: Uint8Array) => void) => void cbs.packet.push(cb),
    onControl: (cb: (b: Uint8Array) => void) => void cbs.control.push(cb),
    onOpen: () => {},
    onClose: (cb: (r: string) => void) => void cbs.close.push(cb),
    close(reason = "closed") {
      if (link.state === "closed") return;
      link.state = "closed";
      for (const cb of cbs.close) cb(reason);
    },
  };
  return { link: link as Link, sent, rx: (b: Uint8Array) => cbs.packet.forEach((cb) => cb(b)) };
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
  f.sendPacket(Uint8Array.of(1, 2, 3));
  expect(udp.sent.at(-1)).toEqual(Uint8Array.of(1, 2, 3));

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
