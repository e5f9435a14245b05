// ICE consent paced by the link's authenticated traffic (./consent.ts), on a fake werift connection and a manual clock.
import { expect, test } from "bun:test";
import { ConsentPacer, EXPIRE_MS, STUN_AFTER_MS, SWEEP_MS, type ConsentConnection } from "./consent.ts";

function fake(answer: () => boolean) {
  const sent: unknown[] = [];
  const states: string[] = [];
  let stops = 0;
  const conn: ConsentConnection = {
    state: "connected", consentFresh: false, localUsername: "l", remoteUsername: "r", remotePassword: "p", iceControlling: true,
    nominated: {
      localCandidate: {}, remoteAddr: ["10.0.0.2", 5000],
      protocol: { request: (req) => (sent.push(req), answer() ? Promise.resolve() : Promise.reject(new Error("timeout"))) },
    },
    queryConsent: () => {},
    stopConsentLifecycle: () => void stops++,
    buildRequest: (o) => ({ ...o }),
    setState: (s) => void states.push((conn.state = s)),
  };
  return { conn, sent, states, stops: () => stops };
}

test("an open link's consent is kept by its authenticated traffic: no STUN checks while it comes, checks once it stops, expiry at EXPIRE_MS", async () => {
  let now = 0, answering = true;
  const f = fake(() => answering);
  const c = new ConsentPacer(f.conn, () => {}, "test", () => now);
  c.start(false);
  expect(f.stops()).toBe(1); // werift's own loop stopped
  expect(f.conn.consentFresh).toBe(true);
  // Authenticated traffic every 20 s (the router's idle exchange): no STUN check in 10 minutes.
  for (; now < 600_000; now += SWEEP_MS) {
    if (now % 20_000 === 0) c.fresh();
    c.check();
  }
  expect(f.sent.length).toBe(0);
  // Silent but answering STUN: a check after STUN_AFTER_MS keeps consent, one at a time.
  const quietFrom = now - SWEEP_MS;
  for (const end = now + 120_000; now < end; now += SWEEP_MS) {
    c.check();
    await Promise.resolve();
    await Promise.resolve();
  }
  expect(f.sent.length).toBeGreaterThanOrEqual(120_000 / STUN_AFTER_MS - 1);
  expect(f.sent.length).toBeLessThanOrEqual(120_000 / STUN_AFTER_MS + 2);
  expect(f.states).toEqual([]);
  expect(now - quietFrom).toBeGreaterThan(EXPIRE_MS);
  // No answers either: expired within EXPIRE_MS of the last proof, as werift expires it.
  answering = false;
  const n = f.sent.length;
  for (const end = now + 2 * EXPIRE_MS; now < end && f.states.length === 0; now += SWEEP_MS) {
    c.check();
    await Promise.resolve();
    await Promise.resolve();
  }
  expect(f.sent.length).toBeGreaterThan(n);
  expect(f.states).toEqual(["failed"]);
  expect(f.conn.consentFresh).toBe(false);
  // werift asking again (a new nomination) restarts consent here, not its own loop.
  const g = fake(() => true);
  const d = new ConsentPacer(g.conn, () => {}, "test", () => now);
  d.start(false);
  g.conn.queryConsent();
  expect(g.stops()).toBe(2);
  expect(g.conn.consentFresh).toBe(true);
});
