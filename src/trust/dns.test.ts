// The DNS responder: A and AAAA answers, NXDOMAIN, other types, and silence on garbage.
import { expect, test } from "bun:test";
import { answerQuery, startDns, type Lookup } from "./dns.ts";

function query(name: string, type: number, id = 0x1234): Uint8Array {
  const labels = name.split(".").flatMap((l) => [l.length, ...Buffer.from(l)]);
  const q = new Uint8Array(12 + labels.length + 1 + 4);
  const dv = new DataView(q.buffer);
  dv.setUint16(0, id);
  dv.setUint16(2, 0x0100);
  dv.setUint16(4, 1);
  q.set(labels, 12);
  dv.setUint16(12 + labels.length + 1, type);
  dv.setUint16(12 + labels.length + 3, 1);
  return q;
}

const lookup: Lookup = (name, type) => {
  if (name !== "laptop.home") return undefined;
  return type === "a" ? [Uint8Array.of(100, 64, 1, 7)] : [Uint8Array.from(Buffer.from("fd7472656c6c00112233445566778899", "hex"))];
};

test("A and AAAA for NAME.NETWORK", () => {
  const a = answerQuery(query("Laptop.home", 1), lookup)!;
  const dv = new DataView(a.buffer);
  expect(dv.getUint16(0)).toBe(0x1234);
  expect(dv.getUint16(2) & 0x800f).toBe(0x8000); // a response, rcode 0
  expect(dv.getUint16(6)).toBe(1);
  expect([...a.subarray(a.length - 4)]).toEqual([100, 64, 1, 7]);
  const aaaa = answerQuery(query("laptop.home", 28), lookup)!;
  expect(Buffer.from(aaaa.subarray(aaaa.length - 16)).toString("hex")).toBe("fd7472656c6c00112233445566778899");
});

test("an unknown name is NXDOMAIN; another type of a known name is an empty answer", () => {
  const nx = answerQuery(query("nobody.home", 1), lookup)!;
  expect(new DataView(nx.buffer).getUint16(2) & 15).toBe(3);
  const mx = answerQuery(query("laptop.home", 15), lookup)!;
  expect(new DataView(mx.buffer).getUint16(2) & 15).toBe(0);
  expect(new DataView(mx.buffer).getUint16(6)).toBe(0);
});

test("garbage gets silence, never a crash", () => {
  for (let i = 0; i < 500; i++) answerQuery(crypto.getRandomValues(new Uint8Array(i % 600)), lookup);
  expect(answerQuery(new Uint8Array(5), lookup)).toBeNull();
  const resp = query("laptop.home", 1);
  resp[2] |= 0x80;
  expect(answerQuery(resp, lookup)).toBeNull();
});

test("the UDP server answers on loopback", async () => {
  const dns = await startDns("127.0.0.1", lookup, 0);
  const port = dns.port;
  const got: Uint8Array[] = [];
  const c = await Bun.udpSocket({ socket: { data: (_s, d) => void got.push(new Uint8Array(d)) } });
  c.send(query("laptop.home", 1), port, "127.0.0.1");
  for (let i = 0; i < 50 && !got.length; i++) await Bun.sleep(20);
  expect([...got[0].subarray(got[0].length - 4)]).toEqual([100, 64, 1, 7]);
  c.close();
  dns.stop();
});

test("an exit forwards other names to its resolver, under fresh IDs, only for overlay askers", async () => {
  // A fake upstream resolver: answers every query with its own bytes plus a marker, from port `up.port`.
  const seenIds: number[] = [];
  const up = await Bun.udpSocket({
    hostname: "127.0.0.1",
    socket: { data: (s, d, p, a) => void (seenIds.push((d[0] << 8) | d[1]), s.send(Uint8Array.from([...d, 0xee]), p, a)) },
  });
  let allowed = true;
  const forward = { ours: (n: string) => n.endsWith(".home"), from: () => allowed, upstream: () => "127.0.0.1" };
  const dns = await startDns("127.0.0.1", lookup, 0, undefined, forward, up.port);
  const got: Uint8Array[] = [];
  const c = await Bun.udpSocket({ socket: { data: (_s, d) => void got.push(new Uint8Array(d)) } });
  const q = query("example.org", 1);
  q[0] = 0x12;
  q[1] = 0x34;
  c.send(q, dns.port, "127.0.0.1");
  for (let i = 0; i < 50 && !got.length; i++) await Bun.sleep(20);
  expect(got.length).toBe(1);
  expect([...got[0]]).toEqual([...q, 0xee]); // the asker's ID restored
  expect(seenIds.length).toBe(1);
  // Our own names are answered here, never forwarded (an unknown one is NXDOMAIN).
  c.send(query("nobody.home", 1), dns.port, "127.0.0.1");
  for (let i = 0; i < 50 && got.length < 2; i++) await Bun.sleep(20);
  expect(got[1][3] & 15).toBe(3);
  expect(seenIds.length).toBe(1);
  // A stranger (not an overlay address) gets no forwarding: NXDOMAIN from here.
  allowed = false;
  c.send(query("example.org", 1), dns.port, "127.0.0.1");
  for (let i = 0; i < 50 && got.length < 3; i++) await Bun.sleep(20);
  expect(got[2][3] & 15).toBe(3);
  expect(seenIds.length).toBe(1);
  c.close();
  up.close();
  dns.stop();
});

test("an exit answers over TCP too: our names here, others relayed to its resolver; strangers are cut off", async () => {
  const { createServer, connect } = await import("node:net");
  // A fake upstream over TCP: answers each framed query with its bytes plus a marker.
  const up = createServer((c) => c.on("data", (d: Buffer) => c.write(Buffer.concat([Buffer.from([0, d.length - 1]), d.subarray(2), Buffer.from([0xee])]))));
  await new Promise<void>((r) => up.listen(0, "127.0.0.1", () => r()));
  const upPort = (up.address() as { port: number }).port;
  let allowed = true;
  const dns = await startDns("127.0.0.1", lookup, 0, undefined, { ours: (n) => n.endsWith(".home"), from: () => allowed, upstream: () => "127.0.0.1" }, upPort);
  const ask = (q: Uint8Array) =>
    new Promise<Buffer>((resolve) => {
      const c = connect(dns.port, "127.0.0.1");
      let got = Buffer.alloc(0);
      c.on("data", (d: Buffer) => (got = Buffer.concat([got, d])));
      c.on("close", () => resolve(got));
      c.on("error", () => {});
      c.write(Buffer.concat([Buffer.from([0, q.length]), q]));
      setTimeout(() => c.end(), 300);
    });
  const q = query("example.org", 1);
  expect([...(await ask(q))]).toEqual([0, q.length + 1, ...q, 0xee]);
  const mine = await ask(query("laptop.home", 1));
  expect([...mine.subarray(mine.length - 4)]).toEqual([100, 64, 1, 7]);
  allowed = false;
  expect((await ask(q)).length).toBe(0);
  dns.stop();
  up.close();
});
