// Timed rekeys after crossing initiations: two Sessions on a wire that delivers only when the test says.
import { describe, expect, test } from "bun:test";
import { Hold } from "../datapath/hold.ts";
import { generateIdentity, type Identity, type NodeId } from "../identity/identity.ts";
import { WIREGUARD_LIMITS } from "./constants.ts";
import { Sessions } from "./sessions.ts";

const A = generateIdentity(new Uint8Array(128).fill(21));
const B = generateIdentity(new Uint8Array(128).fill(22));
const msg = (s: string) => new TextEncoder().encode(s);

/** a and b with a held wire: what each transmits waits in `wire` until flush() delivers it (in order). */
function pair() {
  const clock = { t: 5_000_000 };
  const wire: { to: "a" | "b"; p: Uint8Array }[] = [];
  const got = { a: [] as string[], b: [] as string[] };
  const make = (me: Identity, name: "a" | "b", other: "a" | "b") =>
    new Sessions({ signatures: "sync",
      hold: new Hold(() => clock.t),
      identity: me,
      claims: new Uint8Array(0),
      accept: () => true,
      transmit: (_to, p) => void wire.push({ to: other, p: Uint8Array.from(p) }),
      deliver: (_from, p) => void got[name].push(new TextDecoder().decode(p)),
      now: () => clock.t,
    });
  const s = { a: make(A, "a", "b"), b: make(B, "b", "a") };
  s.a.learn(B.public);
  s.b.learn(A.public);
  const from = { a: B.public.id, b: A.public.id } as Record<"a" | "b", NodeId>;
  const flush = () => {
    while (wire.length > 0) {
      const { to, p } = wire.shift()!;
      s[to].receive(p, from[to]);
    }
  };
  return { s, clock, wire, got, flush };
}

/** Whether a's current keypair was made as responder (private: read for the test's claim). */
const currentIsInitiator = (s: Sessions, peer: NodeId) =>
  (s as unknown as { peers: Map<NodeId, { current?: { isInitiator: boolean } }> }).peers.get(peer)?.current?.isInitiator;

describe("rekey after crossing initiations", () => {
  test("both sides end up responders; the one that sends still rekeys before its keys are rejected", () => {
    const { s, clock, wire, got, flush } = pair();
    // Both send at once: two initiations cross on the wire before either is answered.
    s.a.send(B.public.id, msg("a0"));
    s.b.send(A.public.id, msg("b0"));
    expect(wire.length).toBeGreaterThanOrEqual(2);
    flush();
    expect(got.a).toEqual(["b0"]);
    expect(got.b).toEqual(["a0"]);
    // Each side installed its own initiator keys, then the responder keys the other's first packet confirmed.
    expect(currentIsInitiator(s.a, B.public.id)).toBe(false);
    expect(currentIsInitiator(s.b, A.public.id)).toBe(false);
    const started = s.a.stats.handshakesStarted + s.b.stats.handshakesStarted;

    // Traffic both ways, once a second, up to just before the keys' reject age: a rekey must start by then
    // (WireGuard: REKEY_AFTER_TIME for an initiator; a responder that keeps sending must too, or nobody does).
    const { rejectAfterTime } = WIREGUARD_LIMITS;
    for (let i = 1; i * 1000 < rejectAfterTime - 1000; i++) {
      clock.t += 1000;
      s.a.send(B.public.id, msg(`a${i}`));
      s.b.send(A.public.id, msg(`b${i}`));
      s.a.tick();
      s.b.tick();
      flush();
    }
    expect(s.a.stats.handshakesStarted + s.b.stats.handshakesStarted).toBeGreaterThan(started);
    expect(s.a.stats.handshakesCompleted + s.b.stats.handshakesCompleted).toBeGreaterThan(4);
    // Past the first keys' reject age nothing waits for a handshake: the session goes on, on new keys.
    clock.t += 2000;
    s.a.tick();
    s.b.tick();
    expect(s.a.isEstablished(B.public.id)).toBe(true);
    expect(s.b.isEstablished(A.public.id)).toBe(true);
    const n = got.b.length;
    s.a.send(B.public.id, msg("late"));
    expect(wire.some((w) => w.p[0] === 0xc4)).toBe(true); // sealed at once, not held for a handshake
    flush();
    expect(got.b.length).toBe(n + 1);
  });
});
