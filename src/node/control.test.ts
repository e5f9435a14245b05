// The overlay prober: pings answered by pongs, unmatched or foreign pongs ignored, time-outs.
import { expect, test } from "bun:test";
import { parseNodeId, type NodeId } from "../identity/identity.ts";
import { Prober } from "./control.ts";

const A = parseNodeId("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), B = parseNodeId("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");

test("a ping through a wire of two probers comes back with an RTT", async () => {
  let t = 0;
  const pa: Prober = new Prober((to, p) => { t += 7; pb.receive(A, p); }, () => t);
  const pb: Prober = new Prober((to, p) => pa.receive(B, p), () => t);
  expect(await pa.ping(B)).toBe(7);
});

test("a pong from the wrong peer or with an unknown id does not complete a ping", async () => {
  const out: [NodeId, Uint8Array][] = [];
  const p = new Prober((to, b) => out.push([to, b]));
  const waiting = p.ping(B, 50);
  const pong = Uint8Array.from(out[0][1]);
  pong[0] = 2;
  expect(p.receive(A, pong)).toBeUndefined();
  const unknown = Uint8Array.from(pong);
  unknown[4] ^= 0xff;
  expect(p.receive(B, unknown)).toBeUndefined();
  expect(p.receive(B, pong.subarray(0, 3))).toBeUndefined();
  expect(await waiting).toBeNull();
});
