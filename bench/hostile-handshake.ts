// Handshake floods against one in-process responder: the victim's CPU and whether an honest initiator
// still gets in. `bun bench/hostile-handshake.ts [REPO]` (REPO defaults to this checkout; point it at
// an older checkout to measure "before"). 10,000 attacker datagrams in one simulated second per attack.
import { resolve } from "node:path";

const root = resolve(process.argv[2] ?? ".");
const { generateIdentity } = await import(`${root}/src/identity/identity.ts`);
const { fragment } = await import(`${root}/src/handshake/fragment.ts`);
const { createInitiation } = await import(`${root}/src/handshake/machine.ts`);
const { Sessions } = await import(`${root}/src/session/sessions.ts`);
const { Hold } = await import(`${root}/src/datapath/hold.ts`);

const A = generateIdentity(new Uint8Array(128).fill(31));
const B = generateIdentity(new Uint8Array(128).fill(32));
const M = generateIdentity(new Uint8Array(128).fill(33));
const PACKETS = 10_000;

function victim() {
  const clock = { t: 5_000_000 };
  let a: InstanceType<typeof Sessions>;
  let sentToAttacker = 0;
  const b = new Sessions({
    hold: new Hold(), identity: B, claims: new Uint8Array(0), accept: () => true, now: () => clock.t,
    transmit: (to: string, p: Uint8Array) => (to === A.public.id ? a.receive(p, B.public.id) : sentToAttacker++),
    deliver: () => {},
  });
  a = new Sessions({ hold: new Hold(), identity: A, claims: new Uint8Array(0), accept: () => true, now: () => clock.t, transmit: (_to: string, p: Uint8Array) => b.receive(p, A.public.id, A.public.id), deliver: () => {} });
  a.learn(B.public);
  b.learn(A.public);
  return { a, b, clock, sent: () => sentToAttacker };
}

const fakeId = (i: number) => i.toString(16).padStart(32, "0");
const valid = fragment(0xc1, createInitiation(M, B.public, new Uint8Array(0), 9, 1n).message) as Uint8Array[];

const attacks: [string, (i: number) => [Uint8Array, string, string]][] = [
  ["junk 8-byte initiations, forged senders, one link", (i) => [Uint8Array.of(0xc1, i & 255, i >> 8, 0, 0, 0, 1, 0), fakeId(i), M.public.id]],
  ["junk first fragments (fresh ids), one link", (i) => {
    const g = new Uint8Array(1200).fill(7);
    g[0] = 0xc1;
    new DataView(g.buffer).setUint32(1, i, true);
    g[6] = 24;
    return [g, fakeId(i), M.public.id];
  }],
  ["a valid initiation replayed, forged senders, one link", (i) => [valid[i % valid.length], fakeId(Math.floor(i / valid.length)), M.public.id]],
  ["a valid initiation replayed, forged senders, 10 links", (i) => [valid[i % valid.length], fakeId(Math.floor(i / valid.length)), `link${Math.floor(i / valid.length) % 10}`]],
];

for (const [name, make] of attacks) {
  const v = victim();
  const packets = Array.from({ length: PACKETS }, (_, i) => make(i));
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  let honest = 0;
  for (const [i, [p, via, link]] of packets.entries()) {
    v.b.receive(p, via, link);
    v.clock.t += 1000 / PACKETS;
    if (i === PACKETS / 2 + 137) {
      // The honest initiator starts mid-flood (its handshake costs are measured with the victim's).
      const h = process.cpuUsage();
      v.a.send(B.public.id, new TextEncoder().encode("honest"));
      const u = process.cpuUsage(h);
      honest = (u.user + u.system) / 1000;
    }
  }
  // Signatures in the runtime finish after the flood's loop: let them (the victim's CPU includes them).
  type Settles = { settled?: () => Promise<void> };
  for (let i = 0; i < 4; i++) await Promise.all([(v.a as Settles).settled?.(), (v.b as Settles).settled?.()]);
  const used = process.cpuUsage(cpu);
  const ms = performance.now() - t0;
  const ok = v.b.isEstablished(A.public.id);
  console.log(`${name}: victim CPU ${((used.user + used.system) / 1000 - honest).toFixed(0)} ms (wall ${ms.toFixed(0)} ms) for ${PACKETS} datagrams; ${v.sent()} packets back to the attacker; honest handshake mid-flood: ${ok ? "completes" : "FAILS"} (rate-limited ${v.b.stats.rxRateLimited}, errors ${v.b.stats.handshakeErrors})`);
}
