// How many handshake responses one in-process responder serves per second, and how long it holds its
// event loop meanwhile. `bun bench/handshake-rate.ts [REPO] [N]` (REPO defaults to this checkout; point it
// at an older checkout to measure "before"). N initiations from N distinct members arrive at once (a crowd
// joining a relay); budgets are lifted so the crypto alone is measured. A 1 ms timer notes how late it
// runs: the longest stall is how long anything else on that node (links, probes, data) waited.
import { resolve } from "node:path";

const root = resolve(process.argv[2] ?? ".");
const N = Number(process.argv[3] ?? 200);
const { generateIdentity } = await import(`${root}/src/identity/identity.ts`);
const { fragment } = await import(`${root}/src/handshake/fragment.ts`);
const { createInitiation } = await import(`${root}/src/handshake/machine.ts`);
const { Sessions } = await import(`${root}/src/session/sessions.ts`);
const { Hold } = await import(`${root}/src/datapath/hold.ts`);

const B = generateIdentity(new Uint8Array(128).fill(32));
const members = Array.from({ length: N }, (_, i) => {
  const seed = new Uint8Array(128);
  new DataView(seed.buffer).setUint32(0, i + 1);
  return generateIdentity(seed);
});
// Initiations made beforehand (noble, ~13 ms each): only the responder's work is timed.
const t = BigInt(Date.now()) * 1000n;
const inits = members.map((m, i) => ({ id: m.public.id, frags: fragment(0xc1, createInitiation(m, B.public, new Uint8Array(0), i + 1, t + BigInt(i)).message) as Uint8Array[] }));

let responses = 0;
let lastResponseAt = 0;
const b = new Sessions({
  hold: new Hold(), identity: B, claims: new Uint8Array(0), accept: () => true, deliver: () => {},
  transmit: (_to: string, p: Uint8Array) => {
    if (p[0] === 0xc2 && p[5] === 0) {
      responses++;
      lastResponseAt = performance.now();
    }
  },
});
(b as unknown as { buckets: unknown }).buckets = { take: () => true, underLoad: () => false }; // no budgets: the crypto alone

// Warm up the runtime's ML-DSA (its first use imports keys and probes support).
const warm = generateIdentity(new Uint8Array(128).fill(99));
for (const f of fragment(0xc1, createInitiation(warm, B.public, new Uint8Array(0), 1, t).message) as Uint8Array[]) b.receive(f, warm.public.id, warm.public.id);
await (b as { settled?: () => Promise<void> }).settled?.();
responses = 0;

const lags: number[] = [];
let last = performance.now();
const timer = setInterval(() => {
  const now = performance.now();
  lags.push(now - last - 1);
  last = now;
}, 1);
await new Promise((r) => setTimeout(r, 20));
const cpu = process.cpuUsage();
const t0 = performance.now();
last = t0;
// The crowd arrives: one member's fragments per macrotask (as datagrams come off a socket).
let k = 0;
await new Promise<void>((done) => {
  const next = () => {
    if (k === N) return done();
    for (const f of inits[k].frags) b.receive(f, inits[k].id, inits[k].id);
    k++;
    setImmediate(next);
  };
  next();
});
await (b as { settled?: () => Promise<void> }).settled?.();
while (responses < N && performance.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 5));
const wall = lastResponseAt - t0;
const used = process.cpuUsage(cpu);
clearInterval(timer);
lags.sort((x, y) => x - y);
const q = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))].toFixed(1);
console.log(
  `${root}: ${responses}/${N} responses in ${wall.toFixed(0)} ms = ${((responses / wall) * 1000).toFixed(0)} responses/s; ` +
    `CPU ${((used.user + used.system) / 1000 / N).toFixed(2)} ms per response; event-loop stall (1 ms timer late by) p50 ${q(0.5)} p99 ${q(0.99)} max ${q(1)} ms over ${lags.length} ticks`,
);
process.exit(0);
