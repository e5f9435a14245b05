// `bun bench/link-footprint.ts [--pairs 40] [--settle 5] [--batch 1]`: what one open WebRTC link costs in memory, in
// one process, no root: real links (src/tether/webrtc.ts: werift ICE, DTLS, SCTP, both data channels
// and the fast channel) on 127.0.0.1, in pairs. K pairs are made and measured (RSS, the JavaScript heap,
// its object counts by type), then K more: the difference between the two, per link (a pair is two
// links), is what one more link costs, without what the first ones paid once (code compiled, caches).
// Run it where loopback is the only interface (`unshare -rn` or a fresh namespace), else ICE gathers
// on every interface of the host too. --batch N: the second K pairs are set up N at once (a relay's
// members joining together): the live heap per link is the same, but JSC's heap capacity (its 16 KB
// blocks, which it never compacts) grows with the set-ups' interleaved garbage; printed beside it.
import { parseArgs } from "node:util";
import { heapStats } from "bun:jsc";
import { WebrtcLink } from "../src/tether/webrtc.ts";
import type { NodeId } from "../src/identity/identity.ts";

const { values } = parseArgs({ options: { pairs: { type: "string", default: "40" }, settle: { type: "string", default: "5" }, batch: { type: "string", default: "1" } } });
const pairs = Number(values.pairs), settleMs = Number(values.settle) * 1000, batch = Math.max(1, Number(values.batch));
const log = () => {};

function measure(): { rss: number; heap: number; capacity: number; extra: number; objects: number; types: Record<string, number> } {
  Bun.gc(true);
  const h = heapStats();
  return { rss: process.memoryUsage().rss, heap: h.heapSize, capacity: h.heapCapacity, extra: h.extraMemorySize, objects: h.objectCount, types: h.objectTypeCounts as Record<string, number> };
}

async function pair(i: number): Promise<[WebrtcLink, WebrtcLink]> {
  const a = new WebrtcLink(`a${i}` as NodeId, [], log, ["127.0.0.1"]);
  const b = new WebrtcLink(`b${i}` as NodeId, [], log, ["127.0.0.1"]);
  const opened = Promise.all([a, b].map((l) => new Promise<void>((r, f) => (l.onOpen(r), l.onClose(f)))));
  const offer = await a.offer();
  const answer = await b.answer(offer);
  await a.accept(answer);
  await opened;
  return [a, b];
}

const links: WebrtcLink[] = [];
const fastUp = async () => {
  for (let i = 0; i < 100 && links.some((l) => l.fastStats?.state !== "up"); i++) await Bun.sleep(100);
  return links.filter((l) => l.fastStats?.state === "up").length;
};
for (let i = 0; i < pairs; i++) links.push(...(await pair(i)));
await fastUp();
await Bun.sleep(settleMs);
const before = measure();
const t0 = performance.now();
for (let i = pairs; i < 2 * pairs; i += batch)
  for (const p of await Promise.all(Array.from({ length: Math.min(batch, 2 * pairs - i) }, (_, j) => pair(i + j)))) links.push(...p);
const setupMs = (performance.now() - t0) / pairs;
const up = await fastUp();
await Bun.sleep(settleMs);
const after = measure();
const n = 2 * pairs;
const kb = (x: number) => (x / n / 1024).toFixed(1);
console.log(`${links.length} links open (${up} with the fast channel up), ${setupMs.toFixed(0)} ms a pair${batch > 1 ? `, ${batch} pairs at once` : ""}; the last ${n}:`);
console.log(`per link: RSS ${kb(after.rss - before.rss)} KB, JS heap ${kb(after.heap - before.heap)} KB (capacity ${kb(after.capacity - before.capacity)} KB), extra (buffers) ${kb(after.extra - before.extra)} KB, ${((after.objects - before.objects) / n).toFixed(0)} objects`);
const grew = Object.entries(after.types)
  .map(([t, c]) => [t, (c - (before.types[t] ?? 0)) / n] as const)
  .filter(([, d]) => d >= 1)
  .sort((x, y) => y[1] - x[1]);
console.log(`objects per link by type: ${grew.slice(0, 30).map(([t, d]) => `${t} ${d.toFixed(0)}`).join(", ")}`);
if (process.env.FOOTPRINT_SNAPSHOT) await Bun.write(process.env.FOOTPRINT_SNAPSHOT, JSON.stringify(Bun.generateHeapSnapshot()));
for (const l of links) l.close();
await Bun.sleep(500);
process.exit(0);
