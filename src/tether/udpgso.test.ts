// UDP GSO on real loopback sockets: one sendmsg, the receiver (no UDP_GRO) sees each datagram apart,
// byte for byte, IPv4 and IPv6 (an IPv4 peer through a dual-stack socket, v4-mapped).
import { describe, expect, test } from "bun:test";
import { GsoSocket, parse6 } from "./udpgso.ts";

async function exchange(bindHost: string, to: string, datagrams: Uint8Array[], size: number, asRun = false) {
  const got: Uint8Array[] = [];
  const rx = await Bun.udpSocket({ hostname: bindHost, socket: { data: (_s, d) => void got.push(new Uint8Array(d)) } });
  const tx = await Bun.udpSocket({ hostname: bindHost });
  try {
    const gso = GsoSocket.open((tx as unknown as { fd: number }).fd);
    expect(gso).toBeDefined();
    const run = Buffer.concat(datagrams);
    const r = asRun ? gso!.sendRun(run, run.length, datagrams.length, size, to, rx.port) : gso!.send(datagrams, 0, datagrams.length, size, to, rx.port);
    for (let i = 0; i < 50 && got.length < datagrams.length; i++) await Bun.sleep(10);
    return { r, got, gso: gso! };
  } finally {
    rx.close();
    tx.close();
  }
}

const datagrams = (n: number, size: number, last: number) =>
  Array.from({ length: n }, (_, i) => Uint8Array.from({ length: i === n - 1 ? last : size }, (_, j) => (i * 7 + j) & 255));

describe("UDP GSO", () => {
  test("one sendmsg carries a run; the receiver gets every datagram apart, the shorter last one too", async () => {
    const ds = datagrams(20, 1400, 333);
    const { r, got, gso } = await exchange("127.0.0.1", "127.0.0.1", ds, 1400);
    expect(r).toEqual({ sent: 20 });
    expect(gso.batches).toBe(1);
    expect(got.map((g) => g.length)).toEqual(ds.map((d) => d.length));
    expect(got).toEqual(ds);
  });

  test("a run that lies back to back in one buffer (sendRun, one iovec) arrives the same", async () => {
    const ds = datagrams(20, 1400, 333);
    const { r, got, gso } = await exchange("127.0.0.1", "127.0.0.1", ds, 1400, true);
    expect(r).toEqual({ sent: 20 });
    expect(gso.batches).toBe(1);
    expect(got).toEqual(ds);
  });

  test("IPv6, and an IPv4 address through a dual-stack socket", async () => {
    const ds = datagrams(5, 1200, 1200);
    const v6 = await exchange("::1", "::1", ds, 1200);
    expect(v6.r).toEqual({ sent: 5 });
    expect(v6.got).toEqual(ds);
    const mapped = await exchange("::", "127.0.0.1", ds, 1200);
    expect(mapped.r).toEqual({ sent: 5 });
    expect(mapped.got).toEqual(ds);
  });

  test("IPv6 text forms", () => {
    expect([...parse6("::1")!]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect([...parse6("fd00:1::2")!].slice(0, 4)).toEqual([0xfd, 0, 0, 1]);
    expect([...parse6("::ffff:10.1.2.3")!].slice(10)).toEqual([255, 255, 10, 1, 2, 3]);
    expect(parse6("fe80::1%eth0")).toBeUndefined();
    expect(parse6("1:2:3")).toBeUndefined();
    expect(parse6("1::2::3")).toBeUndefined();
  });
});
