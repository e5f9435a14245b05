// A restarted peer's knock is answered even when it comes right after our offer went astray (werift on loopback, a real seed).
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { generateIdentity } from "../identity/identity.ts";
import { LoopbackLinks } from "../../test/lib/loopback-links.ts";
import { until } from "../../test/lib/wait.ts";

setDefaultTimeout(40_000);
const net = new LoopbackLinks();
const manager = net.manager.bind(net);
beforeAll(() => net.start());
afterAll(() => net.stop());

// Issue 14 (liveness, 2): the offerer (lower id) ignored a knock within 2 s of its own offer, even when
// that offer had gone to the peer before its restart; nothing linked until the offer timed out
// (CONNECT_TIMEOUT_MS, 15 s) and the next attempt came. Here no further attempt comes at all: the knock
// alone must bring the link.
test("a knock right after our offer went to a peer that was gone brings a link without another attempt", async () => {
  const [L, H] = [generateIdentity(), generateIdentity()].sort((x, y) => (x.public.id < y.public.id ? -1 : 1));
  const l = manager(L, [H.public.id]), h = manager(H, [L.public.id]);
  await l.m.start();
  await h.m.start();
  // An offer to a peer not yet registered would be undeliverable, and no further attempt comes here.
  expect(await until(() => net.registered(L.public.id) && net.registered(H.public.id), 5_000)).toBe(true);
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
