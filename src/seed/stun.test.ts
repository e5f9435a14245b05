// The STUN responder: a Binding Request gets the sender's address back, XOR-mapped; junk gets nothing,
// and no answer is ever longer than its request.
import { expect, test } from "bun:test";
import { bindingResponse, startStun } from "./stun.ts";

/** A Binding Request with `pad` bytes of attributes (a SOFTWARE attribute, as our nodes send). */
function request(pad = 48): Uint8Array {
  const r = new Uint8Array(20 + pad);
  const dv = new DataView(r.buffer);
  dv.setUint16(0, 1);
  dv.setUint16(2, pad);
  if (pad) {
    dv.setUint16(20, 0x8022);
    dv.setUint16(22, pad - 4);
  }
  dv.setUint32(4, 0x2112a442);
  r.set(crypto.getRandomValues(new Uint8Array(12)), 8);
  return r;
}

function mapped(res: Uint8Array): { address: string; port: number } {
  const dv = new DataView(res.buffer, res.byteOffset);
  expect(dv.getUint16(0)).toBe(0x0101);
  expect(dv.getUint16(20)).toBe(0x0020);
  const port = dv.getUint16(26) ^ 0x2112;
  const a = [0, 1, 2, 3].map((i) => res[28 + i] ^ [0x21, 0x12, 0xa4, 0x42][i]);
  return { address: a.join("."), port };
}

test("XOR-MAPPED-ADDRESS decodes to the requester's address", () => {
  const req = request();
  const res = bindingResponse(req, "198.18.1.2", 40000)!;
  expect(res.subarray(8, 20)).toEqual(req.subarray(8, 20));
  expect(mapped(res)).toEqual({ address: "198.18.1.2", port: 40000 });
});

test("never more bytes out than in: a bare 20-byte request gets no answer", () => {
  expect(bindingResponse(request(0), "198.18.1.2", 40000)).toBeNull();
  expect(bindingResponse(request(8), "198.18.1.2", 40000)).toBeNull();
  const v4 = bindingResponse(request(12), "198.18.1.2", 40000)!;
  expect(v4.length).toBeLessThanOrEqual(32);
  expect(bindingResponse(request(12), "2001:db8::1", 40000)).toBeNull();
  const v6 = bindingResponse(request(24), "2001:db8::1", 40000)!;
  expect(v6.length).toBeLessThanOrEqual(44);
});

test("anything but a Binding Request is ignored", () => {
  const bad = request();
  bad[0] = 1;
  expect(bindingResponse(bad, "1.2.3.4", 1)).toBeNull();
  expect(bindingResponse(new Uint8Array(19), "1.2.3.4", 1)).toBeNull();
  const lying = request();
  new DataView(lying.buffer).setUint16(2, 100);
  expect(bindingResponse(lying, "1.2.3.4", 1)).toBeNull();
});

test("the UDP responder answers on loopback and survives garbage", async () => {
  const server = await startStun("127.0.0.1", 0);
  const port = server.port;
  const got: Uint8Array[] = [];
  const client = await Bun.udpSocket({ socket: { data: (_s, d) => void got.push(new Uint8Array(d)) } });
  for (let i = 0; i < 30; i++) client.send(crypto.getRandomValues(new Uint8Array(1 + i * 7)), port, "127.0.0.1");
  client.send(request(), port, "127.0.0.1");
  for (let i = 0; i < 50 && got.length === 0; i++) await Bun.sleep(20);
  expect(got.length).toBe(1);
  expect(mapped(got[0]).address).toBe("127.0.0.1");
  expect(mapped(got[0]).port).toBe(client.port);
  expect(server.stats.ignored).toBe(30);
  client.close();
  server.stop();
});
