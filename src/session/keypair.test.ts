// Data packet framing, cross-checked against @noble/ciphers' AES-256-GCM.
import { expect, test } from "bun:test";
import { gcm } from "@noble/ciphers/aes.js";
import { dataReceiver, DATA_HEADER, Keypair } from "./keypair.ts";

const k1 = new Uint8Array(32).fill(1), k2 = new Uint8Array(32).fill(2);

test("a sealed packet opens with @noble/ciphers using the documented nonce and AAD", () => {
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
