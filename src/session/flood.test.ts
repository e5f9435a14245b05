// Handshakes under attack (issue 14, 4): junk, replayed initiations and forged senders must not keep an
// honest initiator out, and under load the responder does no KEM or signature work for unproven ones.
import { Hold } from "../datapath/hold.ts";
import { describe, expect, test } from "bun:test";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { fragment } from "../handshake/fragment.ts";
import { createInitiation } from "../handshake/machine.ts";
import { Sessions } from "./sessions.ts";
import { TYPE_COOKIE_REPLY, TYPE_INIT_FRAGMENT } from "./wire.ts";

const A = generateIdentity(new Uint8Array(128).fill(31)); // honest initiator, its own link
const B = generateIdentity(new Uint8Array(128).fill(32)); // the victim (responder)
const M = generateIdentity(new Uint8Array(128).fill(33)); // hostile member with a link to B

function setup() {
  const clock = { t: 5_000_000 };
  const toM: Uint8Array[] = [];
  let a: Sessions;
  const b = new Sessions({ signatures: "sync", hold: new Hold(),
    identity: B, claims: new Uint8Array(0), accept: () => true, now: () => clock.t,
    transmit: (to, p) => (to === A.public.id ? a.receive(p, B.public.id) : toM.push(p)),
    deliver: () => {},
  });
  const got: string[] = [];
  a = new Sessions({ signatures: "sync", hold: new Hold(),
    identity: A, claims: new Uint8Array(0), accept: () => true, now: () => clock.t,
    transmit: (_to, p) => b.receive(p, A.public.id, A.public.id),
    deliver: (_f, p) => got.push(new TextDecoder().decode(p)),
  });
  a.learn(B.public);
  b.learn(A.public);
  return { a, b, clock, toM, got };
}

/** A fresh, fake node id (what a sender behind a relay may claim). */
const fakeId = (i: number) => i.toString(16).padStart(32, "0") as NodeId;

describe("handshake floods", () => {
  test("junk initiations (8 bytes, or full-size with a bad mac1) charge no budget: the honest handshake completes", () => {
    const { a, b, clock } = setup();
    for (let i = 0; i < 200; i++) {
      b.receive(Uint8Array.of(TYPE_INIT_FRAGMENT, i, 0, 0, 0, 0, 1, 0), M.public.id, M.public.id); // a whole 1-byte "message"
      clock.t += 1;
    }
    const wrongKey = createInitiation(M, A.public, new Uint8Array(0), 1, 1n).message; // mac1 for someone else
    for (let i = 0; i < 50; i++) for (const f of fragment(TYPE_INIT_FRAGMENT, wrongKey)) b.receive(f, M.public.id, M.public.id);
    expect(b.stats.rxRateLimited).toBe(0);
    expect(b.stats.cookieRepliesSent).toBe(0);
    a.send(B.public.id, new TextEncoder().encode("through"));
    expect(b.isEstablished(A.public.id)).toBe(true);
  });

  test("one link rotating forged senders gets only its link's budget", () => {
    const { a, b, clock } = setup();
    const valid = fragment(TYPE_INIT_FRAGMENT, createInitiation(M, B.public, new Uint8Array(0), 9, 1n).message);
    for (let i = 0; i < 1000; i++) {
      for (const f of valid) b.receive(f, fakeId(i), M.public.id); // on M's link, claiming a new sender each time
      clock.t += 1; // 1000 initiations in 1 s
    }
    // Work was done (decapsulation, then "replay") for at most the link's 8 tokens + 1 s of refill.
    expect(b.stats.handshakeErrors).toBeLessThanOrEqual(8 + 8);
    expect(b.stats.rxRateLimited).toBeGreaterThan(900);
    a.send(B.public.id, new TextEncoder().encode("in"));
    expect(b.isEstablished(A.public.id)).toBe(true);
  });

  test("many hostile links put the node under load: cookie replies, not KEM work; the honest initiator gets in", () => {
    const { a, b, clock, toM } = setup();
    const valid = fragment(TYPE_INIT_FRAGMENT, createInitiation(M, B.public, new Uint8Array(0), 9, 1n).message);
    let attempts = 0;
    for (let i = 0; i < 2000; i++) {
      for (const f of valid) b.receive(f, fakeId(i), `hostile-link-${i % 10}`); // 10 links, a new claimed sender each time
      clock.t += 1; // 2000 initiations in 2 s
      attempts++;
    }
    // Work (decapsulation, then "replay") only until half the node's budget is spent, then cookies.
    const worked = b.stats.handshakeErrors;
    expect(worked).toBeLessThanOrEqual(10 + 2 * 20);
    expect(b.stats.cookieRepliesSent + b.stats.rxRateLimited + worked).toBe(attempts - 1); // the first one was answered
    expect(b.stats.cookieRepliesSent).toBeGreaterThan(1900);
    const cookies = toM.filter((p) => p[0] === TYPE_COOKIE_REPLY);
    expect(cookies.length).toBe(b.stats.cookieRepliesSent);
    expect(cookies.every((p) => p.length === 52)).toBe(true);
    // Under load: the honest initiator gets a cookie, retries with mac2 at once, and completes.
    a.send(B.public.id, new TextEncoder().encode("in"));
    expect(a.stats.cookieRepliesReceived).toBe(1);
    expect(b.isEstablished(A.public.id)).toBe(true);
    expect(a.isEstablished(B.public.id)).toBe(true);
  }, 30_000);

  test("a hostile member sending fresh valid initiations is held to its link's budget; others keep theirs", () => {
    const { a, b, clock } = setup();
    // M floods with fresh valid initiations from its real id, picking up cookies as they come.
    const m = new Sessions({ signatures: "sync", hold: new Hold(),
      identity: M, claims: new Uint8Array(0), accept: () => true, now: () => clock.t,
      transmit: (_to, p) => b.receive(p, M.public.id, M.public.id), deliver: () => {},
    });
    m.learn(B.public);
    const before = b.stats.handshakesCompleted;
    for (let i = 0; i < 20; i++) {
      m.close(B.public.id, "again"); // forget keys so send() initiates anew
      m.send(B.public.id, new Uint8Array(0));
      clock.t += 30; // 20 attempts in 0.6 s
    }
    // The link's 8 tokens plus 0.6 s of refill at 8/s: never the node's whole budget.
    expect(b.stats.handshakesCompleted - before).toBeLessThanOrEqual(13);
    expect(b.stats.rxRateLimited).toBeGreaterThan(0);
    a.send(B.public.id, new TextEncoder().encode("in"));
    expect(b.isEstablished(A.public.id)).toBe(true);
  }, 60_000); // ~35 ML-DSA signatures: seconds on a busy machine
});

test("under load, cookie replies go only to senders the node can reach: none towards an unknown one", () => {
  const clock = { t: 5_000_000 };
  const sentTo: string[] = [];
  const b = new Sessions({ signatures: "sync", hold: new Hold(),
    identity: B, claims: new Uint8Array(0), accept: () => true, now: () => clock.t,
    transmit: (to) => void sentTo.push(to), deliver: () => {},
    knows: (id) => !id.startsWith("ff"), // senders the node has no path to (a claimed id behind a relay)
  });
  const valid = fragment(TYPE_INIT_FRAGMENT, createInitiation(M, B.public, new Uint8Array(0), 9, 1n).message);
  for (let i = 0; i < 80 && !b.stats.cookieRepliesSent; i++) {
    for (const f of valid) b.receive(f, fakeId(i), `hostile-link-${i % 10}` as NodeId); // known links: the node gets under load
    clock.t += 1;
  }
  expect(b.stats.cookieRepliesSent).toBeGreaterThan(0); // under load now
  const cookies = b.stats.cookieRepliesSent, limited = b.stats.rxRateLimited;
  sentTo.length = 0;
  const unknown = (i: number) => `ff${i.toString(16)}`.padEnd(32, "0") as NodeId;
  for (let i = 0; i < 5; i++) for (const f of valid) b.receive(f, unknown(i), `hostile-link-${i}` as NodeId);
  expect(b.stats.cookieRepliesSent).toBe(cookies);
  expect(b.stats.rxRateLimited).toBe(limited + 5);
  expect(sentTo.filter((t) => t.startsWith("ff"))).toEqual([]);
});
