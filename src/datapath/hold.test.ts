import { describe, expect, test } from "bun:test";
import { Hold, HOLD_MS, HOLD_PER_KEY, HOLD_STRANGERS, HOLD_TOTAL } from "./hold.ts";

const p = (i: number) => Uint8Array.of(i & 255, i >> 8);

describe("the hold: one queue for every packet that waits", () => {
  test("bounded per key: the oldest go first, counted", () => {
    const h = new Hold(() => 0);
    for (let i = 0; i < HOLD_PER_KEY + 5; i++) expect(h.put("handshake", "peer", p(i))).toBe(true);
    expect(h.stats.handshake).toEqual({ held: HOLD_PER_KEY + 5, dropped: 5 });
    const out = h.take("handshake", "peer");
    expect(out.length).toBe(HOLD_PER_KEY);
    expect(out[0]).toEqual(p(5));
    expect(h.has("handshake", "peer")).toBe(false);
    expect(h.size).toBe(0);
  });

  test("kinds are apart: the same key waits for different things", () => {
    const h = new Hold(() => 0);
    h.put("path", "x", p(1));
    h.put("handshake", "x", p(2));
    expect(h.take("path", "x")).toEqual([p(1)]);
    expect(h.has("handshake", "x")).toBe(true);
    expect(h.keys("handshake")).toEqual(["x"]);
    expect(h.keys("path")).toEqual([]);
  });

  test("strangers (unknown addresses) are bounded in number, per kind", () => {
    const h = new Hold(() => 0);
    for (let i = 0; i < HOLD_STRANGERS; i++) expect(h.put("member", `10.0.${i >> 8}.${i & 255}`, p(i))).toBe(true);
    expect(h.put("member", "10.9.9.9", p(0))).toBe(false);
    expect(h.stats.member.dropped).toBe(1);
    expect(h.put("member", "10.0.0.1", p(0))).toBe(true); // an address already waiting still takes packets
    expect(h.put("address", "aa", p(0))).toBe(true); // and the other kinds have their own room
    expect(h.put("path", "peer", p(0))).toBe(true);
  });

  test("bounded in all", () => {
    const h = new Hold(() => 0);
    let refused = 0;
    for (let i = 0; i < HOLD_TOTAL + 10; i++) if (!h.put("path", `peer${Math.floor(i / HOLD_PER_KEY)}`, p(i))) refused++;
    expect(h.size).toBe(HOLD_TOTAL);
    expect(refused).toBe(10);
    expect(h.stats.path.dropped).toBe(10);
  });

  test("nothing waits longer than HOLD_MS, of any kind (an unknown IPv6 owner included)", () => {
    let t = 0;
    const h = new Hold(() => t);
    h.put("address", "00112233445566778899", p(1));
    h.put("member", "100.64.0.3", p(2));
    t = HOLD_MS / 2;
    h.put("member", "100.64.0.3", p(3));
    h.put("handshake", "peer", p(4));
    t = HOLD_MS + 1;
    h.expire();
    expect(h.has("address", "00112233445566778899")).toBe(false);
    expect(h.stats.address.dropped).toBe(1);
    expect(h.take("member", "100.64.0.3")).toEqual([p(3)]); // the younger one stays
    expect(h.stats.member.dropped).toBe(1);
    t = HOLD_MS * 2;
    h.expire();
    expect(h.size).toBe(0);
    expect(h.stats.handshake).toEqual({ held: 1, dropped: 1 });
  });

  test("drop gives up what waited, counted", () => {
    const h = new Hold(() => 0);
    h.put("handshake", "peer", p(1));
    h.put("handshake", "peer", p(2));
    expect(h.drop("handshake", "peer")).toBe(2);
    expect(h.stats.handshake.dropped).toBe(2);
    expect(h.drop("handshake", "peer")).toBe(0);
  });

  test("a held packet is a copy: the TUN reader's buffer it came in is read into again", () => {
    const h = new Hold(() => 0);
    const slot = new Uint8Array(new SharedArrayBuffer(8));
    slot.set([1, 2, 3]);
    h.put("path", "peer", slot.subarray(0, 3));
    slot.set([9, 9, 9]);
    expect(h.take("path", "peer")).toEqual([Uint8Array.of(1, 2, 3)]);
  });
});
