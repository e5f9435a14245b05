// Route adverts: wire format, grant bounds, longest-prefix choice and failover on health, with a fake clock.
import { describe, expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { parseIpv4 } from "../identity/address.ts";
import { decodeAdvert, decodeQuerySeq, encodeAdvert, encodeQuery, outsideGrant, RouteTable, STALE_MS, FORGET_MS } from "./subnets.ts";
import { RouteError } from "./errors.ts";
import type { Subnet } from "../trust/subnet.ts";

const R1 = "11111111111111111111111111111111" as NodeId;
const R2 = "22222222222222222222222222222222" as NodeId;
const net = (s: string): Subnet => {
  const [address, len] = s.split("/");
  return { family: address.includes(":") ? 6 : 4, address, prefix: Number(len) };
};
/** An IPv4 packet header with destination `dst` (the table reads only the address). */
const to = (dst: string) => {
  const p = new Uint8Array(20);
  p[0] = 0x45;
  p.set(parseIpv4(dst)!, 16);
  return p;
};

describe("route adverts on the wire", () => {
  test("round trip, and exact lengths", () => {
    const a = { seq: 0xdeadbeef, exit: true, exit6: true, dns: false, prefixes: [net("192.168.50.0/24"), net("fd00:1::/64")] };
    const b = encodeAdvert(a);
    expect(decodeAdvert(b)).toEqual(a);
    expect(() => decodeAdvert(b.subarray(0, b.length - 1))).toThrow(RouteError);
    expect(() => decodeAdvert(Uint8Array.from([...b, 0]))).toThrow(RouteError);
    const bad = b.slice();
    bad[5] = 0x80;
    expect(() => decodeAdvert(bad)).toThrow("unknown flags");
    // IPv6 and DNS are said only by an exit.
    expect(decodeAdvert(encodeAdvert({ seq: 1, exit: false, exit6: true, dns: true, prefixes: [] }))).toEqual({ seq: 1, exit: false, exit6: false, dns: false, prefixes: [] });
    expect(decodeAdvert(encodeAdvert({ seq: 1, exit: true, exit6: false, dns: true, prefixes: [] })).dns).toBe(true);
    expect(decodeQuerySeq(encodeQuery(7))).toBe(7);
    expect(decodeQuerySeq(encodeQuery(7).subarray(0, 4))).toBeUndefined();
  });

  test("garbage never throws anything but RouteError", () => {
    for (let i = 0; i < 2000; i++) {
      const b = Uint8Array.from({ length: 1 + (i % 40) }, () => Math.floor(Math.random() * 256));
      b[0] = 0x06;
      try {
        decodeAdvert(b);
      } catch (e) {
        expect(e).toBeInstanceOf(RouteError);
      }
    }
  });
});

describe("route table", () => {
  const clock = () => {
    let t = 1000;
    return { now: () => t, step: (ms: number) => (t += ms) };
  };

  test("only prefixes inside the router's grant are used; exit only with the exit right", () => {
    const c = clock();
    const t = new RouteTable(c.now);
    const refused = t.advert(R1, "r1", { seq: 1, exit: true, prefixes: [net("192.168.50.0/24"), net("10.0.0.0/8")] }, [net("192.168.0.0/16")]);
    expect(refused.map((s) => `${s.address}/${s.prefix}`)).toEqual(["10.0.0.0/8", "0.0.0.0/0"]);
    expect(t.prefixes()).toEqual([net("192.168.50.0/24")]);
    expect(t.route(to("10.1.2.3"), 16, 4)).toBeUndefined();
    expect(t.route(to("192.168.50.10"), 16, 4)).toBe(R1);
    expect(t.isExit(R1)).toBe(false);
    expect(outsideGrant([net("192.168.50.0/25")], [net("192.168.50.0/24")])).toEqual([]);
  });

  test("longest prefix wins", () => {
    const t = new RouteTable(clock().now);
    t.advert(R1, "r1", { seq: 1, exit: false, prefixes: [net("10.0.0.0/8")] }, [net("10.0.0.0/8")]);
    t.advert(R2, "r2", { seq: 1, exit: false, prefixes: [net("10.1.0.0/16")] }, [net("10.0.0.0/8")]);
    expect(t.route(to("10.1.2.3"), 16, 4)).toBe(R2);
    expect(t.route(to("10.2.0.1"), 16, 4)).toBe(R1);
  });

  test("failover: the router in use stays while healthy; a withdrawal or silence moves traffic; RTT picks first", () => {
    const c = clock();
    const t = new RouteTable(c.now);
    const lan = [net("192.168.50.0/24")];
    // RTT measured from each router's query to its advert: r2 answers faster.
    const q1 = decodeQuerySeq(t.query(R1))!, q2 = decodeQuerySeq(t.query(R2))!;
    c.step(5);
    t.advert(R2, "r2", { seq: q2, exit: false, prefixes: lan }, lan);
    c.step(10);
    t.advert(R1, "r1", { seq: q1, exit: false, prefixes: lan }, lan);
    expect(t.route(to("192.168.50.10"), 16, 4)).toBe(R2);
    // r2 withdraws (its LAN is down): r1 at once.
    t.advert(R2, "r2", { seq: 9, exit: false, prefixes: [] }, lan);
    expect(t.route(to("192.168.50.10"), 16, 4)).toBe(R1);
    // r2 is back: r1 stays in use while healthy.
    t.advert(R2, "r2", { seq: 10, exit: false, prefixes: lan }, lan);
    expect(t.route(to("192.168.50.10"), 16, 4)).toBe(R1);
    // r1 falls silent (died): after STALE_MS only r2 is healthy.
    c.step(STALE_MS - 100);
    t.advert(R2, "r2", { seq: 11, exit: false, prefixes: lan }, lan);
    c.step(200);
    expect(t.route(to("192.168.50.10"), 16, 4)).toBe(R2);
    const v = t.view();
    expect(v).toEqual([{ prefix: "192.168.50.0/24", via: R2, routers: expect.arrayContaining([expect.objectContaining({ id: R1, healthy: false }), expect.objectContaining({ id: R2, healthy: true })]) }]);
    // Replies from r1's LAN keep it alive though its adverts are late; a withdrawal still withdraws.
    t.advert(R1, "r1", { seq: 12, exit: false, prefixes: lan }, lan);
    c.step(STALE_MS - 10);
    t.touch(R1);
    c.step(STALE_MS - 10);
    expect(t.view()[0].routers.find((r) => r.id === R1)?.healthy).toBe(true);
    t.advert(R1, "r1", { seq: 13, exit: false, prefixes: [] }, lan);
    t.touch(R1);
    expect(t.prefixes()).toEqual([net("192.168.50.0/24")]); // r2 still has it
    expect(t.view()[0].routers.map((r) => r.id)).toEqual([R2]);
    // Silent routers are forgotten; their prefixes leave the list.
    c.step(FORGET_MS + 1);
    t.expire();
    expect(t.prefixes()).toEqual([]);
  });

  test("exits: only with the exit right; 'auto' keeps the one in use while healthy, else the fastest", () => {
    const c = clock();
    const t = new RouteTable(c.now);
    const exitGrant = [net("0.0.0.0/0"), net("::/0")];
    const q1 = decodeQuerySeq(t.query(R1))!, q2 = decodeQuerySeq(t.query(R2))!;
    c.step(20);
    t.advert(R1, "r1", { seq: q1, exit: true, prefixes: [] }, exitGrant);
    c.step(20);
    t.advert(R2, "r2", { seq: q2, exit: true, prefixes: [] }, exitGrant);
    expect(t.exits().map((e) => e.id)).toEqual([R1, R2]);
    // r1 dies: r2 takes over; r1 back: r2 stays.
    c.step(STALE_MS - 10);
    t.advert(R2, "r2", { seq: 5, exit: true, prefixes: [] }, exitGrant);
    c.step(20);
    expect(t.exits().map((e) => e.id)).toEqual([R2]);
    t.advert(R1, "r1", { seq: 6, exit: true, prefixes: [] }, exitGrant);
    expect(t.exits()[0].id).toBe(R2);
    // A router without the exit right offers none, whatever its advert says.
    t.advert(R2, "r2", { seq: 7, exit: true, prefixes: [] }, [net("192.168.0.0/16")]);
    expect(t.exits().map((e) => e.id)).toEqual([R1]);
    // IPv6 through an exit only with ::/0 granted too; DNS as it says.
    t.advert(R1, "r1", { seq: 8, exit: true, exit6: true, dns: true, prefixes: [] }, exitGrant);
    expect(t.exits()[0]).toMatchObject({ id: R1, exit6: true, dns: true });
    t.advert(R1, "r1", { seq: 9, exit: true, exit6: true, dns: false, prefixes: [] }, [net("0.0.0.0/0")]);
    expect(t.exits()[0]).toMatchObject({ id: R1, exit6: false, dns: false });
  });
});
