// A restarted peer's knock is answered even when it comes right after our offer went astray (werift on loopback, a real seed).
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { generateIdentity, type Identity, type NodeId } from "../identity/identity.ts";
import { startSeed } from "../seed/server.ts";
import { LinkManager } from "./links.ts";
import type { Link } from "./webrtc.ts";

setDefaultTimeout(40_000);
let seedUrl = "";
let seed: Awaited<ReturnType<typeof startSeed>>;
const managers: LinkManager[] = [];

function manager(me: Identity, allow: NodeId[]) {
  const logs: string[] = [];
  const m = new LinkManager({
    identity: me,
    seeds: [seedUrl],
    accept: (r) => (allow.includes(r.id) ? true : `${r.id} not allowed`),
    hostAddresses: ["127.0.0.1"],
    log: (_level, msg) => logs.push(msg),
  });
  const links: Link[] = [];
  m.onLink((l) => links.push(l));
  managers.push(m);
  return { m, links, logs };
}

async function until(f: () => unknown, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (f()) return true;
    await Bun.sleep(20);
  }
  return Boolean(f());
}

beforeAll(async () => {
  seed = await startSeed({ listen: "127.0.0.1:0" });
  seedUrl = `http://127.0.0.1:${seed.port}`;
});
afterAll(async () => {
  for (const m of managers) await m.stop();
  await seed.stop();
});

// Issue 14 (liveness, 2): the offerer (lower id) ignored a knock within 2 s of its own offer, even when
// that offer had gone to the peer before its restart; nothing linked until the offer timed out
// (CONNECT_TIMEOUT_MS, 15 s) and the next attempt came. Here no further attempt comes at all: the knock
// alone must bring the link.
test("a knock right after our offer went to a peer that was gone brings a link without another attempt", async () => {
  const [L, H] = [generateIdentity(), generateIdentity()].sort((x, y) => (x.public.id < y.public.id ? -1 : 1));
  const l = manager(L, [H.public.id]), h = manager(H, [L.public.id]);
  await l.m.start();
  await h.m.start();
  l.m.connect(H.public.id);
  expect(await until(() => l.links[0]?.state === "open" && h.links[0]?.state === "open", 15_000)).toBe(true);

  // H goes away (its bye closes L's link); L wants it back and offers into the void.
  await h.m.stop();
  expect(await until(() => l.m.link(H.public.id) === undefined, 5_000)).toBe(true);
  const offers = () => l.logs.filter((m) => m.startsWith(`offer to ${H.public.id}`)).length;
  const before = offers();
  l.m.connect(H.public.id);
  expect(await until(() => offers() > before, 10_000)).toBe(true);

  // H restarts at once (same identity) and knocks: the knock reaches L right after its offer went out.
  const h2 = manager(H, [L.public.id]);
  await h2.m.start();
  h2.m.connect(L.public.id);
  const linked = await until(() => h2.links[0]?.state === "open" && l.m.link(H.public.id)?.state === "open", 20_000);
  if (!linked) console.log(l.logs.slice(-8).join("\n"));
  expect(linked).toBe(true);
});
