// Handshakes signed and checked in the runtime, asynchronously: state that changes while a signature is
// made or checked (a replay, a newer initiation, a close, a stop, a retry) never yields stale answers or keys.
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { Hold } from "../datapath/hold.ts";
import { forceNoble } from "../identity/fastsig.ts";
import { generateIdentity, type Identity, type NodeId } from "../identity/identity.ts";
import { fragment } from "../handshake/fragment.ts";
import { createInitiation } from "../handshake/machine.ts";
import { Sessions } from "./sessions.ts";
import { TYPE_INIT_FRAGMENT, TYPE_RESP_FRAGMENT } from "./wire.ts";

const A = generateIdentity(new Uint8Array(128).fill(41));
const B = generateIdentity(new Uint8Array(128).fill(42));
const msg = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

interface Side {
  s: Sessions;
  got: string[];
  /** What this side transmitted. */
  wire: Uint8Array[];
}

/** a and b in the default (runtime) mode; `pass(p)` false holds a packet back from the other side (it stays in `wire`). */
function pair(pass: (from: "a" | "b", p: Uint8Array) => boolean = () => true) {
  const sides = {} as Record<"a" | "b", Side>;
  const make = (me: Identity, name: "a" | "b", other: "a" | "b"): Side => {
    const side: Side = { got: [], wire: [], s: undefined as unknown as Sessions };
    side.s = new Sessions({
      hold: new Hold(), identity: me, claims: msg(name), accept: () => true,
      transmit: (_to, p) => {
        side.wire.push(Uint8Array.from(p));
        if (pass(name, p)) sides[other].s.receive(p, me.public.id);
      },
      deliver: (_from, p) => void side.got.push(text(p)),
    });
    return side;
  };
  sides.a = make(A, "a", "b");
  sides.b = make(B, "b", "a");
  sides.a.s.learn(B.public);
  sides.b.s.learn(A.public);
  const settle = async () => {
    for (let i = 0; i < 8; i++) await Promise.all([sides.a.s.settled(), sides.b.s.settled()]);
  };
  return { ...sides, settle };
}

/** How many handshake messages of `type` these fragments carry (distinct message ids). */
const messages = (wire: Uint8Array[], type: number) => new Set(wire.filter((p) => p[0] === type).map((p) => new DataView(p.buffer, p.byteOffset).getUint32(1, true))).size;

describe("asynchronous handshakes", () => {
  afterEach(() => forceNoble(false));

  for (const noble of [false, true])
    test(`${noble ? "noble fallback" : "runtime"}: a handshake completes, held packets go, data flows both ways`, async () => {
      forceNoble(noble);
      const { a, b, settle } = pair();
      a.s.send(B.public.id, msg("one"));
      a.s.send(B.public.id, msg("two"));
      expect(a.s.stats.handshakesStarted).toBe(1); // the second waits for the first's handshake, signing or not
      await settle();
      expect(b.got).toEqual(["one", "two"]);
      b.s.send(A.public.id, msg("back"));
      expect(a.got).toEqual(["back"]);
      expect(a.s.isEstablished(B.public.id) && b.s.isEstablished(A.public.id)).toBe(true);
      expect(text(b.s.remote(A.public.id)!.claims)).toBe("a");
    });

  test("the signatures are the runtime's, made off the call that receives the initiation (no ~16 ms of noble per response there)", async () => {
    const subtle = globalThis.crypto.subtle;
    const sign = spyOn(subtle, "sign"), verify = spyOn(subtle, "verify");
    try {
      const { a, b, settle } = pair((from) => from === "b");
      a.s.send(B.public.id, msg("x"));
      await settle();
      const init = a.wire.filter((p) => p[0] === TYPE_INIT_FRAGMENT);
      for (const f of init) b.s.receive(f, A.public.id);
      expect(b.wire.length).toBe(0); // receive() returned before any signature work: the answer comes later
      await settle();
      expect(messages(b.wire, TYPE_RESP_FRAGMENT)).toBe(1);
      expect(a.s.isEstablished(B.public.id)).toBe(true);
      // Both signatures and both checks went through WebCrypto (BoringSSL), not noble on the event loop.
      expect(sign.mock.calls.length).toBeGreaterThanOrEqual(2);
      expect(verify.mock.calls.length).toBeGreaterThanOrEqual(2);
    } finally {
      sign.mockRestore();
      verify.mockRestore();
    }
  });

  test("an initiation replayed while its signature is being checked gets no second response", async () => {
    const { a, b, settle } = pair((from) => from === "b"); // a's packets are held: the test delivers them
    a.s.send(B.public.id, msg("x"));
    await settle();
    const init = a.wire.filter((p) => p[0] === TYPE_INIT_FRAGMENT);
    for (const f of init) b.s.receive(f, A.public.id);
    for (const f of init) b.s.receive(f, A.public.id); // the replay, before the first one's check is done
    await settle();
    expect(messages(b.wire, TYPE_RESP_FRAGMENT)).toBe(1);
    expect(b.s.stats.handshakeErrors).toBe(1); // the replay, refused as one
    for (const f of init) b.s.receive(f, A.public.id); // and again once answered
    await settle();
    expect(messages(b.wire, TYPE_RESP_FRAGMENT)).toBe(1);
    expect(b.s.stats.handshakeErrors).toBe(2);
  });

  test("fresh initiations from one sender while one is being answered: one verification, one response", async () => {
    const { b, settle } = pair((from) => from === "b");
    const inits = [1n, 2n, 3n].map((t) => fragment(TYPE_INIT_FRAGMENT, createInitiation(A, B.public, msg("a"), 7 + Number(t), 1_000_000n + t).message));
    for (const i of inits) for (const f of i) b.s.receive(f, A.public.id);
    await settle();
    expect(messages(b.wire, TYPE_RESP_FRAGMENT)).toBe(1);
    expect(b.s.stats.rxRateLimited).toBe(2); // within the per-source budget (4): dropped for the one in flight
    // The newest one, sent again once the first is answered (as the initiator's retry would be): answered.
    for (const f of fragment(TYPE_INIT_FRAGMENT, createInitiation(A, B.public, msg("a"), 20, 1_000_010n).message)) b.s.receive(f, A.public.id);
    await settle();
    expect(messages(b.wire, TYPE_RESP_FRAGMENT)).toBe(2);
  });

  test("an initiation from a peer closed while its signature is checked installs nothing and is not answered", async () => {
    const { a, b, settle } = pair((from) => from === "b");
    a.s.send(B.public.id, msg("x"));
    await settle();
    for (const p of a.wire.filter((q) => q[0] === TYPE_INIT_FRAGMENT)) b.s.receive(p, A.public.id);
    b.s.close(A.public.id, "revoked"); // while the check is in flight
    await settle();
    expect(messages(b.wire, TYPE_RESP_FRAGMENT)).toBe(0);
    expect(b.s.handshaking(A.public.id)).toBe(false);
    expect(b.s.isEstablished(A.public.id)).toBe(false);
    // Its timestamp was still used up: the same initiation later is a replay, not a session.
    for (const p of a.wire.filter((q) => q[0] === TYPE_INIT_FRAGMENT)) b.s.receive(p, A.public.id);
    await settle();
    expect(messages(b.wire, TYPE_RESP_FRAGMENT)).toBe(0);
  });

  test("a response whose check completes after the session closed installs nothing and sends no packet", async () => {
    const { a, b, settle } = pair((from) => from === "a"); // b's response is held: the test delivers it
    a.s.send(B.public.id, msg("waiting"));
    await settle();
    const resp = b.wire.filter((p) => p[0] === TYPE_RESP_FRAGMENT);
    expect(resp.length).toBeGreaterThan(0);
    const sent = a.wire.length;
    for (const p of resp) a.s.receive(p, B.public.id);
    a.s.close(B.public.id, "removed from allow"); // while the response's check is in flight
    await settle();
    expect(a.s.isEstablished(B.public.id)).toBe(false);
    expect(a.wire.length).toBe(sent);
    expect(a.s.stats.handshakesCompleted).toBe(0);
  });

  test("an initiation still being signed when its session closes is never sent; after stop() nothing is sent or answered", async () => {
    const { a, b, settle } = pair();
    a.s.send(B.public.id, msg("x"));
    a.s.close(B.public.id, "test"); // while our signature is made
    await settle();
    expect(messages(a.wire, TYPE_INIT_FRAGMENT)).toBe(0);
    b.s.send(A.public.id, msg("y"));
    b.s.stop();
    await settle();
    expect(b.wire.length).toBe(0);
    expect(a.got).toEqual([]);
    // A responder stopped while it checks an initiation does not answer it.
    const c = pair((from) => from === "b");
    c.a.s.send(B.public.id, msg("z"));
    await c.settle();
    for (const f of c.a.wire.filter((p) => p[0] === TYPE_INIT_FRAGMENT)) c.b.s.receive(f, A.public.id);
    c.b.s.stop();
    await c.settle();
    expect(c.b.wire.length).toBe(0);
  });

  test("a retry while the first initiation's response is being checked: the old response installs nothing, the new one does", async () => {
    const { a, b, settle } = pair((from) => from === "a");
    a.s.send(B.public.id, msg("x"));
    await settle();
    const first = b.wire.filter((p) => p[0] === TYPE_RESP_FRAGMENT);
    // The first answer arrives; while its signature is checked, a retry (as tick() makes one after
    // rekeyTimeout) replaces the handshake it answers.
    for (const p of first) a.s.receive(p, B.public.id);
    (a.s as unknown as { initiate(p: unknown, retry: boolean): void }).initiate((a.s as unknown as { peers: Map<NodeId, unknown> }).peers.get(B.public.id), true);
    await settle();
    expect(a.s.isEstablished(B.public.id)).toBe(false);
    const second = b.wire.filter((p) => p[0] === TYPE_RESP_FRAGMENT).slice(first.length);
    expect(second.length).toBeGreaterThan(0);
    for (const p of second) a.s.receive(p, B.public.id);
    await settle();
    expect(a.s.isEstablished(B.public.id)).toBe(true);
    expect(a.s.stats.handshakesCompleted).toBe(1);
  });
});
