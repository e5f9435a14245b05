// The UDP guard: an ICMP "port unreachable" on a socket made the way werift makes its own (a named
// `createSocket` import) is logged, and the process lives on.
import { openWebrtcPair } from "../../test/lib/webrtc-pair.ts";
import { expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { CandidatePair } from "werift";
import type { NodeId } from "../identity/identity.ts";
import { boundPairRequestIds, guardUdpSockets, iceHostAddresses, WebrtcLink } from "./webrtc.ts";

test("an ICMP error on a socket werift made (named createSocket import) is logged, not thrown", async () => {
  const logs: string[] = [];
  guardUdpSockets((_level, msg) => logs.push(msg));
  // A port nobody listens on: the kernel picks one for a socket we then close.
  const probe = createSocket("udp4");
  await new Promise<void>((r) => probe.bind(0, "127.0.0.1", () => r()));
  const port = probe.address().port;
  probe.close();
  const s = createSocket("udp4"); // no 'error' listener, as werift's
  await new Promise<void>((r) => s.connect(port, "127.0.0.1", () => r()));
  for (let i = 0; i < 5 && !logs.some((l) => l.includes("ECONNREFUSED")); i++) {
    s.send(Buffer.from("x"));
    await Bun.sleep(50);
  }
  s.close();
  expect(logs.some((l) => l === "udp socket error ignored: ECONNREFUSED")).toBe(true);
});

test("ICE gathers on the host's addresses less the avoided ones (the overlay's own): no socket for them", () => {
  const all = iceHostAddresses();
  expect(all.some((a) => a.startsWith("127.") || a === "::1" || a.startsWith("fe80:"))).toBe(false);
  const avoided = new Set(all.slice(0, 1));
  const rest = iceHostAddresses(["127.0.0.1"], (h) => avoided.has(h));
  expect(rest[0]).toBe("127.0.0.1");
  for (const a of avoided) expect(rest).not.toContain(a);
  expect(rest.length).toBe(all.length - avoided.size + 1);
});

test("a candidate pair remembers the latest STUN transaction ids only, and still spots a retransmission", () => {
  boundPairRequestIds();
  const pair = new CandidatePair({} as never, {} as never, true) as unknown as { noteIncomingRequest(id: string): boolean; requestTransactionIds: Set<string>; retransmissionsReceived: number };
  // A day of the peer's consent checks, one every ~5 s.
  for (let i = 0; i < 17_280; i++) expect(pair.noteIncomingRequest(`id${i}`)).toBe(false);
  expect(pair.requestTransactionIds.size).toBeLessThanOrEqual(16);
  expect(pair.noteIncomingRequest("id17279")).toBe(true); // the latest one, sent again
  expect(pair.retransmissionsReceived).toBe(1);
});

test("a closed link leaves no subscriber on its werift events (werift may keep the connection itself)", async () => {
  const [a, b] = await openWebrtcPair();
  type Ev = { event: { stack: unknown[] } };
  // The events werift's own close() leaves subscribed (the peer connection's, ICE's, its sockets'), taken
  // before close, which drops the connection's list of sockets.
  const events = (l: WebrtcLink): Ev[] => {
    const pc = (l as unknown as { pc: { connectionStateChange: Ev; iceTransports: { onStateChange: Ev; connection: { stateChanged: Ev; protocols: { onRequestReceived: Ev }[] } }[] } }).pc;
    const ice = pc.iceTransports[0];
    return [pc.connectionStateChange, ice.onStateChange, ice.connection.stateChanged, ...ice.connection.protocols.map((p) => p.onRequestReceived)];
  };
  const watched = events(a);
  const subscribers = () => watched.map((e) => e.event.stack.length);
  expect(watched.length).toBeGreaterThan(3);
  expect(subscribers().every((n) => n > 0)).toBe(true);
  a.close("test");
  b.close("test");
  for (let i = 0; i < 50 && subscribers().some((n) => n > 0); i++) await Bun.sleep(100);
  expect(subscribers()).toEqual(watched.map(() => 0));
});

test("a link with no host address to offer says so (ICE would offer no candidate and fail at once)", () => {
  const logs: string[] = [];
  const l = new WebrtcLink("p" as NodeId, [], (level, msg) => logs.push(`${level} ${msg}`), [], () => true); // every address avoided
  l.close("test over");
  expect(logs.filter((m) => m.startsWith("warn no address of this host to offer to peers (interfaces seen: "))).toHaveLength(1);
});
