// Data packet framing, cross-checked against @noble/ciphers' AES-256-GCM, with both ciphers a keypair
// can use: the system's libcrypto in batches (./gcm.ts, where it is there) and node:crypto.
import { afterAll, describe, expect, test } from "bun:test";
import { gcm } from "@noble/ciphers/aes.js";
import { dataReceiver, DATA_HEADER, Keypair } from "./keypair.ts";
import { GCM_BATCH, gcmLib } from "./gcm.ts";

const k1 = new Uint8Array(32).fill(1), k2 = new Uint8Array(32).fill(2);
afterAll(() => {
  Keypair.libcrypto = true;
});

test("libcrypto is found here (this machine has libcrypto.so.3 and TinyCC): the batch path is the one tested", () => {
  expect(gcmLib()).not.toBeNull();
});

for (const cipher of ["libcrypto", "node:crypto"] as const) describe(cipher, () => {
const use = () => {
  Keypair.libcrypto = cipher === "libcrypto";
};

test("a sealed packet opens with @noble/ciphers using the documented nonce and AAD", () => {
  use();
  const kp = new Keypair({ send: k1, recv: k2 }, 7, 0xdeadbeef, true, 0);
  kp.sendCounter = 0x0102030405;
  const payload = crypto.getRandomValues(new Uint8Array(1400));
  const pkt = kp.seal(payload);
  expect(pkt[0]).toBe(0xc4);
  expect(Array.from(pkt.subarray(1, 4))).toEqual([0, 0, 0]);
  expect(dataReceiver(pkt)).toBe(0xdeadbeef);
  const nonce = new Uint8Array(12);
  nonce.set([0x05, 0x04, 0x03, 0x02, 0x01], 4);
  const plain = gcm(k1, nonce, pkt.subarray(0, DATA_HEADER)).decrypt(pkt.subarray(DATA_HEADER));
  expect(plain).toEqual(payload);
});

test("a packet sealed by @noble/ciphers opens here; one flipped bit does not", () => {
  use();
  const kp = new Keypair({ send: k1, recv: k2 }, 7, 9, true, 0);
  const header = new Uint8Array(DATA_HEADER);
  header[0] = 0xc4;
  header[4] = 7;
  header[8] = 42;
  const nonce = new Uint8Array(12);
  nonce[4] = 42;
  const body = gcm(k2, nonce, header).encrypt(new TextEncoder().encode("from noble"));
  const pkt = new Uint8Array(DATA_HEADER + body.length);
  pkt.set(header);
  pkt.set(body, DATA_HEADER);
  const bad = Uint8Array.from(pkt);
  bad[2] ^= 1; // the header is authenticated too
  expect(kp.open(bad)).toBeNull();
  expect(new TextDecoder().decode(kp.open(pkt) as Uint8Array)).toBe("from noble");
  expect(kp.open(pkt)).toBe("replay");
});

/** The counter in a sealed packet's header. */
const counterOf = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset + 8, 8).getBigUint64(0, true);

test("no packet is ever sealed twice with one counter: seal and sealBatch share one counter, each used once", () => {
  use();
  const tx = new Keypair({ send: k1, recv: k2 }, 7, 9, true, 0);
  const rx = new Keypair({ send: k2, recv: k1 }, 9, 7, false, 0);
  const payload = (i: number) => new Uint8Array(1 + (i % 1400)).fill(i & 0xff);
  const sealed: Uint8Array[] = [];
  let n = 0;
  // Batches of every size from the TUN (empty included), single seals (keepalives, held packets) between them.
  for (let size = 0; size <= 130; size += 1 + (size >> 3)) {
    sealed.push(...tx.sealBatch(Array.from({ length: size }, () => payload(n++))));
    sealed.push(tx.seal(payload(n++)));
  }
  expect(tx.sendCounter).toBe(n);
  const counters = sealed.map(counterOf);
  expect(new Set(counters).size).toBe(sealed.length);
  expect(counters).toEqual(Array.from({ length: n }, (_, i) => BigInt(i)));
  // The far side opens each exactly once; a packet sealed again under a used counter is a replay.
  for (let i = 0; i < sealed.length; i++) expect(rx.open(sealed[i])).toEqual(payload(i));
  tx.sendCounter = 5;
  expect(rx.open(tx.seal(payload(5)))).toBe("replay");
});

test("a batch's packets are independent of the buffers they came from and of later batches", () => {
  use();
  const tx = new Keypair({ send: k1, recv: k2 }, 7, 9, true, 0);
  const rx = new Keypair({ send: k2, recv: k1 }, 9, 7, false, 0);
  const src = new Uint8Array(64).fill(1);
  const first = tx.sealBatch([src.subarray(0, 32), src.subarray(32)]);
  src.fill(2);
  const second = tx.sealBatch([src]);
  expect(rx.open(first[0])).toEqual(new Uint8Array(32).fill(1));
  expect(rx.open(first[1])).toEqual(new Uint8Array(32).fill(1));
  expect(rx.open(second[0])).toEqual(new Uint8Array(64).fill(2));
});

test("batches larger than one libcrypto call, and empty payloads, keep one counter each, in order", () => {
  use();
  const tx = new Keypair({ send: k1, recv: k2 }, 7, 9, true, 0);
  const rx = new Keypair({ send: k2, recv: k1 }, 9, 7, false, 0);
  const payloads = Array.from({ length: GCM_BATCH * 2 + 3 }, (_, i) => new Uint8Array(i % 7 === 0 ? 0 : 1 + (i % 1500)).fill(i & 0xff));
  const sealed = tx.sealBatch(payloads);
  expect(tx.sendCounter).toBe(payloads.length);
  expect(sealed.map(counterOf)).toEqual(payloads.map((_, i) => BigInt(i)));
  for (let i = 0; i < sealed.length; i++) {
    expect(sealed[i].length).toBe(payloads[i].length + 32);
    expect(rx.open(sealed[i])).toEqual(payloads[i]);
  }
});
});

test("libcrypto's packets open with node:crypto and node:crypto's with libcrypto", () => {
  const both = (sealWith: boolean, openWith: boolean) => {
    Keypair.libcrypto = sealWith;
    const tx = new Keypair({ send: k1, recv: k2 }, 7, 9, true, 0);
    Keypair.libcrypto = openWith;
    const rx = new Keypair({ send: k2, recv: k1 }, 9, 7, false, 0);
    const payloads = [new Uint8Array(0), new Uint8Array(1400).fill(3), new Uint8Array(77).fill(4)];
    const sealed = [...tx.sealBatch(payloads), tx.seal(new Uint8Array(5).fill(6))];
    expect(sealed.map((p) => rx.open(p))).toEqual([...payloads, new Uint8Array(5).fill(6)]);
    // A flipped bit anywhere fails, and the packet's counter stays unused (the good one opens after).
    Keypair.libcrypto = sealWith;
    const gk = new Keypair({ send: k1, recv: k2 }, 7, 9, true, 0);
    gk.sendCounter = 100;
    const good = gk.seal(new Uint8Array(100).fill(7));
    for (const at of [0, 9, 20, good.length - 1]) {
      const bad = Uint8Array.from(good);
      bad[at] ^= 0x10;
      expect(rx.open(bad)).toBeNull();
    }
    expect(rx.open(good)).toEqual(new Uint8Array(100).fill(7));
  };
  both(true, false);
  both(false, true);
  both(true, true);
});
