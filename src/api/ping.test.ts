// GET /v1/ping on whole nodes in one process (issue 14): a full node id nothing named to this node is
// refused at once with a plain error — no record lookup through relays, no question to the seeds, no
// peer entry, no link attempt — while a member of our networks named by name is still looked up.
import { afterEach, expect, test } from "bun:test";
import { generateIdentity, type NodeId } from "../identity/identity.ts";
import { setLogLevel } from "../log.ts";
import { MemoryNet } from "../tether/memory.ts";
import { testNetwork, WholeNodes, type Whole } from "../../test/lib/whole.ts";
import { apiApp } from "./app.ts";

setLogLevel((process.env.TRELLIS_TEST_LOG as "debug") ?? "error");

const HOME = testNetwork(91);
const IDS = Array.from({ length: 3 }, (_, i) => generateIdentity(new Uint8Array(128).fill(i + 90)));
const TOKEN = "cd".repeat(32);
const nodes = new WholeNodes();
afterEach(() => nodes.stop());

/** Node `w`'s API, and what its links were asked: seeds' "present" questions (a seed that says yes to anything) and link attempts. */
function watch(w: Whole) {
  const links = (w.node as unknown as { links: { connect(id: NodeId, now?: boolean): void; present?(id: NodeId, ms: number): Promise<boolean> } }).links;
  const asked: NodeId[] = [], connects: NodeId[] = [];
  links.present = async (id) => (asked.push(id), true);
  const connect = links.connect.bind(links);
  links.connect = (id, now) => (connects.push(id), connect(id, now));
  const api = apiApp(w.node, { host: "127.0.0.1", port: () => 7080, token: TOKEN });
  const ping = async (node: string, timeoutMs = 1000) => {
    const r = await api.request(`http://127.0.0.1:7080/v1/ping?node=${node}&timeout_ms=${timeoutMs}`, { headers: { host: "127.0.0.1:7080", authorization: `Bearer ${TOKEN}` } });
    return { status: r.status, body: (await r.json()) as { error?: string; code?: string; id?: string; rtt_ms?: number | null } };
  };
  const known = (id: NodeId) => w.node.status().peers.some((p) => p.id === id);
  return { ping, asked, connects, known };
}

test("a made-up full id with no relay linked: refused at once, no seed asked, no peer, no link attempt", async () => {
  const [a] = await nodes.start(new MemoryNet(), IDS.slice(0, 1), { prefix: "p", allow: false, network: HOME });
  const w = watch(a);
  const made = generateIdentity(new Uint8Array(128).fill(7)).public.id;
  const t0 = performance.now();
  const r = await w.ping(made);
  expect(r.status).toBe(404);
  expect(r.body.code).toBe("unknown-peer");
  expect(r.body.error).toContain("is not a peer this node knows");
  expect(performance.now() - t0).toBeLessThan(500); // no wait for an answer that is not asked for
  expect(w.asked).toEqual([]);
  expect(w.connects).toEqual([]);
  expect(w.known(made)).toBe(false);
});

test("a member's full id whose record a relay holds, never met: refused, no link attempt; by name it is found and answers", async () => {
  const net = new MemoryNet({ relays: [IDS[1].public.id] });
  const [a, r, c] = await nodes.start(net, IDS, { prefix: "q", allow: false, network: HOME, relays: new Set([1]) });
  const w = watch(a);
  const linked = (x: Whole, y: Whole) => x.node.status().links.some((l) => l.peer === y.id && l.alive);
  for (const end = performance.now() + 10_000; !(linked(a, r) && linked(c, r)) && performance.now() < end; ) await Bun.sleep(20);
  expect(linked(a, r) && linked(c, r)).toBe(true);
  const byId = await w.ping(c.id);
  expect(byId.status).toBe(404);
  expect(byId.body.code).toBe("unknown-peer");
  expect(w.connects).not.toContain(c.id);
  expect(w.asked).toEqual([]);
  expect(w.known(c.id)).toBe(false);
  // A member named by name: looked up (its certificate, checked against the root), then pinged.
  const byName = await w.ping("q2", 5000);
  expect(byName.status).toBe(200);
  expect(byName.body.id).toBe(c.id);
});
