// Two fast channels over real node:dgram sockets on loopback (as werift's): a batch leaves in GSO runs
// and arrives in GRO reads, cut back into the datagrams sent; when the kernel refuses GSO on the socket
// (here: SO_NO_CHECK, which makes UDP_SEGMENT fail with EINVAL), the same datagrams go one by one, the
// refusal is remembered for that socket and shown in status, and nothing is lost.
import { describe, expect, test } from "bun:test";
import { dlopen } from "bun:ffi";
import { createSocket, type Socket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { FastChannel, type IceConnection } from "./fast.ts";

interface Transport {
  socket: Socket;
  onData: (data: Buffer, addr: [string, number]) => void;
}

async function bound(): Promise<Socket> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  return s;
}

/** The fd under a node:dgram socket (as fast.ts finds it). */
function fdOf(s: Socket): number {
  const state = Object.getOwnPropertySymbols(s).map((k) => (s as unknown as Record<symbol, { handle?: { socket?: { fd: number } } }>)[k]).find((v) => v?.handle?.socket);
  return state!.handle!.socket!.fd;
}

async function pair(batches?: Uint8Array[][]) {
  const sa = await bound(), sb = await bound();
  const addr = (s: Socket): [string, number] => ["127.0.0.1", s.address().port];
  const transport = (s: Socket): Transport => {
    const t: Transport = { socket: s, onData: () => {} };
    s.on("message", (m, r) => t.onData(m, [r.address, r.port]));
    return t;
  };
  const ta = transport(sa), tb = transport(sb);
  const conn = (t: Transport, remote: [string, number]): IceConnection =>
    ({ nominated: { protocol: { transport: t }, remoteAddr: remote }, canSendApplicationData: () => true, protocols: [{ transport: t }], checkList: [{ state: 3, remoteAddr: remote }] }) as unknown as IceConnection;
  const got: Uint8Array[] = [];
  const a = new FastChannel(conn(ta, addr(sb)), () => {}, () => {}, "a");
  const b = new FastChannel(conn(tb, addr(sa)), (x) => got.push(new Uint8Array(x)), () => {}, "b",
    batches && ((bs) => (batches.push(bs.map((x) => new Uint8Array(x))), bs.forEach((x) => got.push(new Uint8Array(x))))));
  a.keyed(b.token);
  b.keyed(a.token);
  for (let i = 0; i < 100 && (a.state !== "up" || a.mtu === 0); i++) await Bun.sleep(20);
  return { a, b, sa, sb, got, close: () => (a.close(), b.close(), sa.close(), sb.close()) };
}

/** A session data packet of `len` bytes (type word, receiver index 5, counter), random after the header. */
function data(counter: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  b.set(randomBytes(len - 16), 16);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xc4, true);
  v.setUint32(4, 5, true);
  v.setUint32(8, counter, true);
  return b;
}

async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !ok(); i++) await Bun.sleep(10);
}

describe("fast channel offload over real sockets", () => {
  test("a batch leaves in GSO runs and arrives in GRO reads, cut back byte for byte", async () => {
    const { a, b, got, close } = await pair();
    try {
      expect(a.state).toBe("up");
      expect(a.offload).toEqual(["gso", "gro"]);
      const batch = Array.from({ length: 40 }, (_, i) => data(i, i === 39 ? 200 : 1200));
      expect(a.sendBatch(batch)).toBe(40);
      await until(() => got.length >= 40);
      expect(got).toEqual(batch);
      expect(a.stats.txGsoSends).toBe(1);
      expect(a.stats.txGsoDatagrams).toBe(40);
      expect(b.stats.rxGroReads).toBe(1);
      expect(b.stats.rxGroDatagrams).toBe(40);
      // The socket as the kernel sees it: its buffer (the 4 MB asked, capped by rmem_max, doubled), nothing dropped.
      const sock = b.socket!;
      expect(sock.rcvbuf).toBeGreaterThan(0);
      expect(sock.drops).toBe(0);
      expect(sock.rxQueue).toBeGreaterThanOrEqual(0);
    } finally {
      close();
    }
  });

  test("with a batch listener, a GRO read of session data is handed on as one batch, in order", async () => {
    const batches: Uint8Array[][] = [];
    const { a, b, got, close } = await pair(batches);
    try {
      const batch = Array.from({ length: 30 }, (_, i) => data(i, i === 29 ? 100 : 1300));
      expect(a.sendBatch(batch)).toBe(30);
      await until(() => got.length >= 30);
      expect(got).toEqual(batch);
      expect(batches.length).toBe(1);
      expect(batches[0]).toEqual(batch);
      expect(b.stats.rxGroReads).toBe(1);
      expect(b.stats.rxGroDatagrams).toBe(30);
      expect(b.stats.rxPackets).toBe(30);
    } finally {
      close();
    }
  });

  test("a socket where the kernel refuses GSO: the datagrams go one by one, the refusal stays with the socket", async () => {
    const { a, b, sa, got, close } = await pair();
    try {
      // SO_NO_CHECK (no UDP checksum on send): the kernel refuses UDP_SEGMENT with EINVAL.
      const libc = dlopen("libc.so.6", { setsockopt: { args: ["int", "int", "int", "ptr", "u32"], returns: "int" } });
      expect(libc.symbols.setsockopt(fdOf(sa), 1, 11, new Int32Array([1]), 4)).toBe(0);
      const first = Array.from({ length: 10 }, (_, i) => data(i, 1000));
      expect(a.sendBatch(first)).toBe(10);
      await until(() => got.length >= 10);
      expect(got).toEqual(first);
      expect(a.stats.txFailed).toBe(0);
      expect(a.stats.txGsoSends).toBe(0);
      expect(a.offload[0]).toBe("gso refused: EINVAL");
      // Remembered: the next batch goes one by one at once.
      const second = Array.from({ length: 10 }, (_, i) => data(100 + i, 1000));
      a.sendBatch(second);
      await until(() => got.length >= 20);
      expect(got.slice(10)).toEqual(second);
      expect(a.stats.txGsoSends).toBe(0);
      expect(b.stats.rxGroReads).toBe(0);
    } finally {
      close();
    }
  });
});
