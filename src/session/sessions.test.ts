// Two Sessions wired back to back in memory: handshake, data both ways, refusals, rekey, replay, garbage.
import { Hold, HOLD_PER_KEY } from "../datapath/hold.ts";
import { describe, expect, test } from "bun:test";
import { generateIdentity, type Identity, type NodeId } from "../identity/identity.ts";
import { Sessions, type SessionsOptions } from "./sessions.ts";
import { isHandshakePacket, TYPE_INIT_FRAGMENT, TYPE_RESP_FRAGMENT } from "./wire.ts";

const A = generateIdentity(new Uint8Array(128).fill(11));
const B = generateIdentity(new Uint8Array(128).fill(12));
const C = generateIdentity(new Uint8Array(128).fill(13));

interface Side {
  s: Sessions;
  got: Uint8Array[];
  wire: Uint8Array[]; // everything this side transmitted
  established: NodeId[];
}

function pair(opts: { accept?: SessionsOptions["accept"]; clock?: { t: number }; limits?: SessionsOptions["limits"]; drop?: (p: Uint8Array) => boolean } = {}) {
  const clock = opts.clock ?? { t: 1_000_000 };
  const sides: Record<string, Side> = {};
  const make = (me: Identity, name: string, other: string): Side => {
    const side: Side = { got: [], wire: [], established: [], s: undefined as unknown as Sessions };
    side.s = new Sessions({ signatures: "sync", hold: new Hold(),
      identity: me,
      claims: new TextEncoder().encode(`{"name":"${name}"}`),
      accept: opts.accept ?? (() => true),
      transmit: (_to, p) => {
        side.wire.push(Uint8Array.from(p));
        if (!opts.drop?.(p)) sides[other].s.receive(p, me.public.id);
      },
      deliver: (_from, p) => side.got.push(Uint8Array.from(p)),
      onEstablished: (peer) => side.established.push(peer),
      now: () => clock.t,
      limits: opts.limits,
    });
    return side;
  };
  sides.a = make(A, "a", "b");
  sides.b = make(B, "b", "a");
  sides.a.s.learn(B.public);
  sides.b.s.learn(A.public);
  return { a: sides.a, b: sides.b, clock };
}

const msg = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("sessions", () => {
  test("a handshake completes and data flows both ways", () => {
    const { a, b } = pair();
    a.s.send(B.public.id, msg("hello b"));
    expect(b.got.map(text)).toEqual(["hello b"]);
    expect(a.s.isEstablished(B.public.id)).toBe(true);
    expect(b.s.isEstablished(A.public.id)).toBe(true);
    b.s.send(A.public.id, msg("hello a"));
    expect(a.got.map(text)).toEqual(["hello a"]);
    expect(text(b.s.remote(A.public.id)!.claims)).toBe('{"name":"a"}');
    expect(a.established).toEqual([B.public.id]);
    expect(b.established).toEqual([A.public.id]);
  });

  test("data gets one keepalive back after keepaliveTimeout; keepalives get none (idle peers do not trade them forever)", () => {
    const { a, b, clock } = pair();
    a.s.send(B.public.id, msg("hello b"));
    const sent = () => [a.wire.length, b.wire.length];
    const start = sent();
    for (let t = 0; t < 120_000; t += 250) {
      clock.t += 250;
      a.s.tick();
      b.s.tick();
    }
    // b answered the data with one keepalive; a sent nothing back for it, nor anything else.
    expect(b.wire.length - start[1]).toBe(1);
    expect(a.wire.length - start[0]).toBe(0);
  });

  test("called every 100 ms, tick sends the keepalive within a second of keepaliveTimeout and retries a lost handshake on time", () => {
    const { a, b, clock } = pair();
    const run = (ms: number) => {
      for (const end = clock.t + ms; clock.t < end; clock.t += 100) {
        a.s.tick();
        b.s.tick();
      }
    };
    a.s.send(B.public.id, msg("hello b"));
    run(20_000); // b's keepalive for it went; b has sent nothing for over keepaliveTimeout
    a.s.send(B.public.id, msg("again"));
    const sentAt = clock.t, before = b.wire.length;
    while (b.wire.length === before && clock.t - sentAt < 60_000) run(100);
    expect(b.wire.length).toBe(before + 1); // the keepalive
    expect(clock.t - sentAt).toBeLessThanOrEqual(1_000 + 100);
    // A handshake whose answer is lost is retried at its retry time, not at the next sweep.
    let lose = true;
    const c = pair({ drop: (p) => lose && isHandshakePacket(p) && p[0] === TYPE_RESP_FRAGMENT });
    c.a.s.send(B.public.id, msg("lost answer"));
    const inits = () => c.a.wire.filter((p) => p[0] === TYPE_INIT_FRAGMENT).length;
    const first = inits();
    const t0 = c.clock.t;
    lose = false;
    while (inits() === first && c.clock.t - t0 < 30_000) {
      c.clock.t += 100;
      c.a.s.tick();
    }
    expect(inits()).toBeGreaterThan(first);
    expect(c.clock.t - t0).toBeLessThanOrEqual(5_000 + 100 + 3_000); // REKEY_TIMEOUT plus jitter, to the 100 ms
  });

  test("sendBatch: one counter each, in order, interleaved with send; before keys, the batch waits for the handshake", () => {
    const { a, b } = pair();
    const payloads = (from: number, n: number) => Array.from({ length: n }, (_, i) => msg(`p${from + i}`));
    a.s.sendBatch(B.public.id, payloads(0, 3)); // no keys yet: held, then sent after the handshake
    a.s.send(B.public.id, msg("p3"));
    a.s.sendBatch(B.public.id, payloads(4, 40));
    a.s.sendBatch(B.public.id, payloads(44, 1));
    a.s.send(B.public.id, msg("p45"));
    expect(b.got.map(text)).toEqual(Array.from({ length: 46 }, (_, i) => `p${i}`));
    const counters = a.wire.filter((p) => p[0] === 0xc4).map((p) => new DataView(p.buffer, p.byteOffset + 8, 8).getBigUint64(0, true));
    expect(new Set(counters).size).toBe(counters.length);
    expect(counters).toEqual([...counters].sort((x, y) => (x < y ? -1 : 1)));
  });

  test("the responder never sends more bytes than it received before the initiator is proven", () => {
    const { a, b } = pair();
    a.s.send(B.public.id, msg("x"));
    const init = a.wire.filter(isHandshakePacket).reduce((n, p) => n + p.length, 0);
    const resp = b.wire.filter(isHandshakePacket).reduce((n, p) => n + p.length, 0);
    expect(resp).toBeGreaterThan(0);
    expect(resp).toBeLessThan(init);
  });

  test("accept() refusing stops the handshake: no reply at all", () => {
    const { a, b } = pair({ accept: (remote) => (remote.id === A.public.id ? "not on the allow-list" : true) });
    a.s.send(B.public.id, msg("let me in"));
    expect(b.wire.length).toBe(0);
    expect(b.got.length).toBe(0);
    expect(b.s.stats.rxRefused).toBe(1);
    expect(a.s.isEstablished(B.public.id)).toBe(false);
  });

  test("an initiation from someone who does not know our public key gets silence (bad mac1)", () => {
    const { a, b } = pair();
    // C thinks it is talking to B but uses A's public identity in place of B's: mac1 is keyed wrong.
    const c = new Sessions({ signatures: "sync", hold: new Hold(),
      identity: C, claims: new Uint8Array(0), accept: () => true,
      transmit: (_to, p) => b.s.receive(p, C.public.id), deliver: () => {},
    });
    c.learn({ ...A.public, id: B.public.id });
    c.send(B.public.id, msg("scan"));
    expect(b.s.stats.rxBadMac1).toBe(1);
    expect(b.wire.length).toBe(0);
  });

  test("an initiation in A's name signed with another key (valid mac1, valid AEAD) gets no response and no session", () => {
    const { a, b } = pair();
    // The forger holds C's signing key and presents A's public identity: everything but the
    // signature checks out, so only the ML-DSA verification can stop it.
    const forger = new Sessions({ signatures: "sync", hold: new Hold(),
      identity: { ...C, public: A.public }, claims: new Uint8Array(0), accept: () => true,
      transmit: (_to, p) => b.s.receive(p, C.public.id), deliver: () => {},
    });
    forger.learn(B.public);
    forger.send(B.public.id, msg("I am A"));
    expect(b.wire.length).toBe(0);
    expect(b.s.stats.rxBadMac1).toBe(0);
    expect(b.s.stats.handshakeErrors).toBe(1);
    expect(b.s.isEstablished(A.public.id)).toBe(false);
    // A itself still gets in afterwards (the forgery left no state that blocks it).
    a.s.send(B.public.id, msg("really A"));
    expect(b.got.map(text)).toEqual(["really A"]);
  });

  test("a response from a holder of B's key-agreement secrets but not B's signing key is not installed", () => {
    const a: Side = { got: [], wire: [], established: [], s: undefined as unknown as Sessions };
    let fake!: Sessions;
    const logs: string[] = [];
    a.s = new Sessions({ signatures: "sync", hold: new Hold(),
      identity: A, claims: new Uint8Array(0), accept: () => true,
      transmit: (_to, p) => fake.receive(p, A.public.id), deliver: (_f, p) => a.got.push(p),
      onEstablished: (peer) => a.established.push(peer), log: (_l, m) => logs.push(m),
    });
    const fakeGot: Uint8Array[] = [];
    fake = new Sessions({ signatures: "sync", hold: new Hold(),
      identity: { ...B, dsaSecret: C.dsaSecret }, claims: new Uint8Array(0), accept: () => true,
      transmit: (_to, p) => a.s.receive(p, B.public.id), deliver: (_f, p) => fakeGot.push(p),
    });
    a.s.learn(B.public);
    fake.learn(A.public);
    a.s.send(B.public.id, msg("secret for B"));
    expect(a.established).toEqual([]);
    expect(a.s.isEstablished(B.public.id)).toBe(false);
    expect(a.s.stats.handshakeErrors).toBe(1);
    expect(logs.some((m) => m.includes("bad-signature"))).toBe(true);
    expect(fakeGot).toEqual([]); // the queued packet never went to the impostor
  });

  test("a replayed initiation is refused; tampered and truncated ones are dropped", () => {
    const { a, b } = pair();
    a.s.send(B.public.id, msg("one"));
    const initFrags = a.wire.filter((p) => p[0] === TYPE_INIT_FRAGMENT);
    const before = b.wire.length;
    for (const f of initFrags) b.s.receive(f, A.public.id); // replay
    expect(b.wire.length).toBe(before);
    expect(b.s.stats.handshakeErrors).toBe(1);
    // Tamper one byte in the middle fragment: mac1 no longer matches.
    const tampered = initFrags.map((f) => Uint8Array.from(f));
    tampered[3][500] ^= 1;
    for (const f of tampered) b.s.receive(f, A.public.id);
    expect(b.s.stats.rxBadMac1).toBe(1);
    // Truncated: drop the last fragment, then a short last fragment.
    for (const f of initFrags.slice(0, -1)) b.s.receive(f, C.public.id);
    b.s.receive(initFrags[initFrags.length - 1].subarray(0, 20), C.public.id);
    expect(b.wire.length).toBe(before);
  });

  test("tampered and replayed data packets are dropped and counted", () => {
    let holding = false;
    const { a, b } = pair({ drop: () => holding });
    a.s.send(B.public.id, msg("first"));
    const last = a.wire[a.wire.length - 1];
    b.s.receive(last, A.public.id); // replay of a delivered packet
    expect(b.s.stats.rxReplay).toBe(1);
    holding = true;
    a.s.send(B.public.id, msg("second"));
    holding = false;
    const fresh = a.wire[a.wire.length - 1];
    const bad = Uint8Array.from(fresh);
    bad[bad.length - 1] ^= 1;
    b.s.receive(bad, A.public.id); // tag fails: the window must not move
    expect(b.s.stats.rxBadTag).toBe(1);
    b.s.receive(fresh, A.public.id); // the genuine packet with the same counter still gets in
    expect(b.got.map(text)).toEqual(["first", "second"]);
  });

  test("a responder with large claims still never answers with more bytes than the initiation had", () => {
    const big = new Uint8Array(12_000).fill(7);
    const got: Uint8Array[] = [];
    let a!: Sessions;
    const b = new Sessions({ signatures: "sync", hold: new Hold(),
      identity: B, claims: big, accept: () => true, deliver: () => {},
      transmit: (_to, p) => { got.push(Uint8Array.from(p)); a.receive(p, B.public.id); },
    });
    const sentByA: Uint8Array[] = [];
    a = new Sessions({ signatures: "sync", hold: new Hold(),
      identity: A, claims: new Uint8Array(0), accept: () => true, deliver: () => {},
      transmit: (_to, p) => { sentByA.push(Uint8Array.from(p)); b.receive(p, A.public.id); },
    });
    a.learn(B.public);
    b.learn(A.public);
    a.send(B.public.id, msg("x"));
    const init = sentByA.filter(isHandshakePacket).reduce((n, p) => n + p.length, 0);
    const resp = got.filter(isHandshakePacket).reduce((n, p) => n + p.length, 0);
    expect(resp).toBeGreaterThan(0);
    expect(resp).toBeLessThan(init);
    expect(a.isEstablished(B.public.id)).toBe(true); // it still completes, without b's claims
    expect(a.remote(B.public.id)!.claims.length).toBe(0);
  });

  test("a response for no handshake of ours is refused by its index, not by an exception", () => {
    const { a, b } = pair();
    a.s.send(B.public.id, msg("x"));
    const warnings: string[] = [];
    const c = new Sessions({ signatures: "sync", hold: new Hold(),
      identity: A, claims: new Uint8Array(0), accept: () => true, transmit: () => {}, deliver: () => {},
      log: (level, m) => void (level === "warn" && warnings.push(m)),
    });
    // b's response to a, replayed to another Sessions of A's that never initiated.
    const resp = b.wire.filter((p) => p[0] === TYPE_RESP_FRAGMENT);
    expect(resp.length).toBeGreaterThan(0);
    for (const p of resp) c.receive(p, B.public.id);
    expect(warnings).toEqual([]);
    expect(c.stats.handshakeErrors).toBeGreaterThan(0);
  });

  test("packets sent while a handshake is in flight start no new one (one signature per retry interval, not per packet)", () => {
    const clock = { t: 1_000_000 };
    const s = new Sessions({ signatures: "sync", hold: new Hold(), identity: A, claims: new Uint8Array(0), accept: () => true, transmit: () => {}, deliver: () => {}, now: () => clock.t });
    s.learn(B.public); // nobody answers
    for (let i = 0; i < 50; i++) s.send(B.public.id, msg(`p${i}`));
    expect(s.stats.handshakesStarted).toBe(1);
    clock.t += 100;
    for (let i = 0; i < 50; i++) s.send(B.public.id, msg(`q${i}`));
    expect(s.stats.handshakesStarted).toBe(1);
    clock.t += 6000; // past the retry time (rekeyTimeout + jitter)
    s.tick();
    expect(s.stats.handshakesStarted).toBe(2);
  });

  test("a responder waiting for the initiator's first packet starts no crossing handshake; what it sends waits for that packet", () => {
    let held: Uint8Array[] | null = [];
    const { a, b, clock } = pair({ drop: (p) => (held && !isHandshakePacket(p) ? (held.push(Uint8Array.from(p)), true) : false) });
    a.s.send(B.public.id, msg("x")); // a's handshake completes; its first data packet (the confirmation) is held back
    b.s.send(A.public.id, msg("y"));
    expect(b.s.stats.handshakesStarted).toBe(0);
    expect(b.s.handshaking(A.public.id)).toBe(true);
    const confirm = held!;
    held = null;
    for (const p of confirm) b.s.receive(p, A.public.id);
    expect(b.got.map(text)).toEqual(["x"]);
    expect(a.got.map(text)).toEqual(["y"]);
    expect(b.s.stats.handshakesStarted).toBe(0);
    // The confirmation never comes: after rekeyTimeout the responder's tick starts its own handshake.
    const c = pair({ clock, drop: (p) => !isHandshakePacket(p) });
    c.a.s.send(B.public.id, msg("x"));
    c.b.s.send(A.public.id, msg("y"));
    c.b.s.tick();
    expect(c.b.s.stats.handshakesStarted).toBe(0);
    clock.t += 5_001;
    c.b.s.tick();
    expect(c.b.s.stats.handshakesStarted).toBe(1);
  });

  test("packets waiting for a handshake are bounded per peer; the oldest are dropped and counted", () => {
    const sent: Uint8Array[] = [];
    const hold = new Hold();
    const s = new Sessions({ signatures: "sync", hold, identity: A, claims: new Uint8Array(0), accept: () => true, transmit: (_t, p) => sent.push(p), deliver: () => {} });
    for (let i = 0; i < 200; i++) s.send(B.public.id, msg(`p${i}`)); // no public identity yet: all wait
    expect(hold.stats.handshake).toEqual({ held: 200, dropped: 200 - HOLD_PER_KEY });
    expect(sent.length).toBe(0);
    // Closing the session gives up what waited: counted too.
    s.close(B.public.id, "test");
    expect(hold.stats.handshake.dropped).toBe(200);
    expect(hold.size).toBe(0);
  });

  test("garbage never throws, and every piece is refused by a check, not by an accident", () => {
    const warnings: string[] = [];
    const b = new Sessions({ signatures: "sync", hold: new Hold(),
      identity: B, claims: new Uint8Array(0), accept: () => true, transmit: () => {}, deliver: () => {},
      log: (level, m) => void (level === "warn" && warnings.push(m)),
    });
    b.learn(A.public);
    for (let i = 0; i < 300; i++) {
      const g = crypto.getRandomValues(new Uint8Array(1 + ((i * 37) % 1300)));
      if (i % 3 === 0) g[0] = 0xc1 + (i % 4);
      expect(() => b.receive(g, A.public.id)).not.toThrow();
    }
    b.receive(new Uint8Array(0));
    // Short packets of every session type, down to the type byte alone.
    for (const t of [0xc1, 0xc2, 0xc4]) for (let n = 1; n < 40; n++) b.receive(Uint8Array.from([t, ...new Uint8Array(n - 1)]), A.public.id);
    // receive() catches everything; an exception that is not a HandshakeError (a TypeError, a
    // RangeError from a short buffer) is logged as a warning: there must be none.
    expect(warnings).toEqual([]);
    expect(b.stats.rxData).toBe(0);
  });

  test("rekey after time: a new handshake, and the old keypair still opens packets in flight", () => {
    const clock = { t: 1_000_000 };
    let hold: Uint8Array[] | null = null;
    const { a, b } = pair({ clock, drop: (p) => (hold && !isHandshakePacket(p) ? (hold.push(Uint8Array.from(p)), true) : false) });
    a.s.send(B.public.id, msg("before"));
    const started = a.s.stats.handshakesStarted;
    hold = [];
    a.s.send(B.public.id, msg("in flight")); // sealed with the old keypair, held back
    clock.t += 121_000;
    const held = hold;
    hold = null;
    a.s.send(B.public.id, msg("after")); // old enough: sent, and a rekey starts
    expect(a.s.stats.handshakesStarted).toBe(started + 1);
    for (const p of held) b.s.receive(p, A.public.id);
    expect(b.got.map(text)).toEqual(["before", "after", "in flight"]);
    a.s.send(B.public.id, msg("new keys"));
    expect(b.got.map(text).at(-1)).toBe("new keys");
  });

  test("rekey after a count of messages", () => {
    const { a, b } = pair({ limits: { rekeyAfterMessages: 5 } });
    for (let i = 0; i < 12; i++) a.s.send(B.public.id, msg(`m${i}`));
    expect(a.s.stats.handshakesStarted).toBeGreaterThanOrEqual(2);
    expect(b.got.length).toBe(12);
  });

  test("expired keys are not used; a fresh handshake follows", () => {
    const clock = { t: 1_000_000 };
    const { a, b } = pair({ clock });
    a.s.send(B.public.id, msg("one"));
    clock.t += 181_000;
    a.s.tick();
    b.s.tick();
    expect(a.s.isEstablished(B.public.id)).toBe(false);
    a.s.send(B.public.id, msg("two"));
    expect(b.got.map(text)).toEqual(["one", "two"]);
  });

  test("simultaneous initiations converge", () => {
    const { a, b } = pair();
    // Cross the two initiations by delivering a's only after b has started.
    a.s.send(B.public.id, msg("from a"));
    b.s.send(A.public.id, msg("from b"));
    a.s.send(B.public.id, msg("again a"));
    b.s.send(A.public.id, msg("again b"));
    expect(b.got.map(text)).toEqual(["from a", "again a"]);
    expect(a.got.map(text)).toEqual(["from b", "again b"]);
  });

  test("without the remote's public identity, packets wait; learning it starts the handshake", () => {
    const got: string[] = [];
    let bs: Sessions;
    const as = new Sessions({ signatures: "sync", hold: new Hold(), identity: A, claims: new Uint8Array(0), accept: () => true, transmit: (_t, p) => bs.receive(p, A.public.id), deliver: () => {} });
    bs = new Sessions({ signatures: "sync", hold: new Hold(), identity: B, claims: new Uint8Array(0), accept: () => true, transmit: (_t, p) => as.receive(p, B.public.id), deliver: (_f, p) => got.push(text(p)) });
    as.send(B.public.id, msg("queued"));
    expect(got).toEqual([]);
    as.learn(B.public);
    expect(got).toEqual(["queued"]);
  });
});
