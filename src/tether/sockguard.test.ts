// The socket guard (./sockguard.ts): a plaintext ClientHello sent to a link's socket once DTLS was up
// made werift start the handshake over, dropping its keys: the link's data channels went silent while
// it still looked open. From anyone who knew the port (werift takes DTLS from any address), and from the
// peer's own address (one who can forge it) once only candidate pairs may speak. A stranger's STUN
// check, without our ICE password, was answered and paired with.
import { expect, test } from "bun:test";
import { createSocket, type Socket } from "node:dgram";
import { openWebrtcPair } from "../../test/lib/webrtc-pair.ts";
import { until } from "../../test/lib/wait.ts";
import { classes, Message, methods } from "werift";
import { encryptedRecords } from "./sockguard.ts";
import type { WebrtcLink } from "./webrtc.ts";

/** A DTLS 1.2 record: content type, epoch, body. */
function record(type: number, epoch: number, body: Uint8Array): Buffer {
  const h = Buffer.alloc(13);
  h[0] = type;
  h[1] = 0xfe;
  h[2] = 0xfd;
  h.writeUInt16BE(epoch, 3);
  h.writeUInt16BE(body.length, 11);
  return Buffer.concat([h, body]);
}

/** A plaintext ClientHello (DTLS 1.2, no cookie, two ECDHE suites), as a peer starting over would send. */
function clientHello(): Buffer {
  const hello = Buffer.concat([Buffer.from([0xfe, 0xfd]), Buffer.alloc(32, 7), Buffer.from([0, 0, 0, 4, 0xc0, 0x2b, 0xc0, 0x2f, 1, 0, 0, 0])]);
  const hs = Buffer.alloc(12);
  hs[0] = 1; // client_hello
  hs.writeUIntBE(hello.length, 1, 3);
  hs.writeUIntBE(hello.length, 9, 3);
  return record(22, 0, Buffer.concat([hs, hello]));
}

type Sockets = { transport: { socket: Socket } }[];
const sockets = (l: WebrtcLink): Socket[] =>
  ((l as unknown as { pc: { iceTransports: { connection: { protocols: Sockets } }[] } }).pc.iceTransports[0].connection.protocols).map((p) => p.transport.socket);

/** Whether a control message from a still reaches b (over SCTP in DTLS). */
async function controlArrives(a: WebrtcLink, b: WebrtcLink, text: string): Promise<boolean> {
  const got: string[] = [];
  b.onControl((m) => got.push(Buffer.from(m).toString()));
  a.sendControl(Buffer.from(text));
  return until(() => got.includes(text), 3_000);
}

test("a datagram's plaintext records are dropped, its encrypted ones kept", () => {
  const clear = record(22, 0, Buffer.from([1, 2, 3])), sealed = record(22, 1, Buffer.from([4, 5])), app = record(23, 1, Buffer.from([6]));
  const both = Buffer.concat([sealed, app]);
  expect(encryptedRecords(both)).toBe(both);
  expect(encryptedRecords(Buffer.concat([clear, sealed, app]))).toEqual(both);
  expect(encryptedRecords(clear)).toBeUndefined();
  expect(encryptedRecords(both.subarray(0, both.length - 1))).toBeUndefined(); // a record cut short
  expect(encryptedRecords(Buffer.from([23, 0xfe, 0xfd]))).toBeUndefined();
});

test("a stranger's ClientHello and alert at a link's sockets: dropped, the link carries on", async () => {
  const [a, b] = await openWebrtcPair();
  // Setting up the link itself trips nothing.
  for (const l of [a, b]) expect(l.guardStats).toEqual({ stun: 0, strangers: 0, plaintext: 0 });
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const alert = record(21, 0, Buffer.from([2, 0]));
  for (const l of [a, b]) for (const sock of sockets(l)) for (const p of [clientHello(), alert]) s.send(p, sock.address().port, "127.0.0.1");
  await Bun.sleep(300);
  expect(await controlArrives(a, b, "a to b after a stranger's hello")).toBe(true);
  expect(await controlArrives(b, a, "b to a after a stranger's hello")).toBe(true);
  expect(a.guardStats!.strangers).toBeGreaterThan(0);
  expect(b.guardStats!.strangers).toBeGreaterThan(0);
  expect([a.state, b.state]).toEqual(["open", "open"]);
  s.close();
  a.close("test over");
  b.close("test over");
});

test("a ClientHello from the peer's own address once DTLS is up (a forged source): dropped, the link carries on", async () => {
  const [a, b] = await openWebrtcPair();
  // b's own sockets stand in for one who forges b's address.
  for (const from of sockets(b)) for (const to of sockets(a)) from.send(clientHello(), to.address().port, "127.0.0.1");
  await Bun.sleep(300);
  expect(await controlArrives(b, a, "b to a after the forged hello")).toBe(true);
  expect(await controlArrives(a, b, "a to b after the forged hello")).toBe(true);
  expect(a.guardStats!.plaintext).toBeGreaterThan(0);
  a.close("test over");
  b.close("test over");
});

test("a stranger's STUN check (not our ICE password) is not answered and makes no candidate pair", async () => {
  const [a, b] = await openWebrtcPair();
  const conn = (l: WebrtcLink) => (l as unknown as { pc: { iceTransports: { connection: { checkList: unknown[]; localUsername: string } }[] } }).pc.iceTransports[0].connection;
  const pairs = conn(a).checkList.length;
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const answers: Buffer[] = [];
  s.on("message", (m) => answers.push(m));
  // Our username (it is in our SDP), a guessed password; and one with no integrity at all.
  const check = (password?: string) => {
    const m = new Message(methods.BINDING, classes.REQUEST);
    m.setAttribute("USERNAME", `${conn(a).localUsername}:x`).setAttribute("PRIORITY", 1).setAttribute("ICE-CONTROLLING", 1n).setAttribute("USE-CANDIDATE", null);
    if (password) m.addMessageIntegrity(Buffer.from(password));
    return m.addFingerprint().bytes;
  };
  for (const sock of sockets(a)) for (const m of [check("guessed"), check()]) s.send(m, sock.address().port, "127.0.0.1");
  await Bun.sleep(500);
  expect(answers.length).toBe(0);
  expect(conn(a).checkList.length).toBe(pairs);
  expect(a.guardStats!.stun).toBe(2 * sockets(a).length);
  expect(await controlArrives(a, b, "a to b after a stranger's checks")).toBe(true);
  s.close();
  a.close("test over");
  b.close("test over");
});
