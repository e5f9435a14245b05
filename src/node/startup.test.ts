// A node that runs a seed, starting: a member that registers (tethered) while the node is still opening
// its TUN gets a link the node hears of. Two whole nodes in one process over a real seed on loopback
// (the member's packets ride its seed socket; no UDP link forms there: werift skips loopback).
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../config/load.ts";
import { generateIdentity, type Identity } from "../identity/identity.ts";
import { setLogLevel } from "../log.ts";
import { createMemoryTun, type MemoryTun } from "../tun/memory.ts";
import { Node } from "./node.ts";
import { answerPings, ping, type Whole } from "../../test/lib/whole.ts";

setLogLevel((process.env.TRELLIS_TEST_LOG as "debug") ?? "error");

const IDS = Array.from({ length: 2 }, (_, i) => generateIdentity(new Uint8Array(128).fill(i + 41)));
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A port free on 127.0.0.1 now. */
function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

function whole(identity: Identity, i: number, toml: string, openTun: () => Promise<MemoryTun>, tun: MemoryTun): Whole {
  const dir = mkdtempSync(join(tmpdir(), "trellis-startup-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig(`[node]\nname = "s${i}"\nstate_dir = "${dir}"\nipv4 = "100.64.9.${i + 1}/24"\n${toml}`, `s${i}.toml`);
  const node = new Node(config, identity, { openTun });
  cleanup.push(() => node.stop());
  return { node, tun, id: identity.public.id, ipv4: `100.64.9.${i + 1}` };
}

test("a member that registers with a seed while its node is still opening the TUN gets a link the node hears of (the bench pair that never answered)", async () => {
  const [ia, ib] = IDS;
  const port = freePort();
  // b: relay and seed; its TUN opens only when the test lets it, after a registered.
  const tunB = createMemoryTun("smem1", 1500);
  let openB!: () => void;
  const gate = new Promise<void>((r) => (openB = r));
  const b = whole(ib, 1, `[network]\nallow = ["${ia.public.id}"]\n[tun]\nname = "smem1"\n[relay]\nenabled = true\nlisten = "127.0.0.1:${port}"\n`, () => gate.then(() => tunB), tunB);
  const startedB = b.node.start();
  // a: a member whose seed is b.
  const tunA = createMemoryTun("smem0", 1500);
  const a = whole(ia, 0, `[network]\nseeds = ["http://127.0.0.1:${port}"]\nallow = ["${ib.public.id}"]\n[tun]\nname = "smem0"\n[relay]\nenabled = false\n`, async () => tunA, tunA);
  // The seed listens before the TUN opens: a registers, tethered, and has its link to b.
  for (let i = 0; ; i++) {
    try {
      await a.node.start();
      break;
    } catch (e) {
      if (i > 50) throw e;
      await Bun.sleep(50);
    }
  }
  const end = performance.now() + 5_000;
  while (!a.node.status().links.some((l) => l.peer === ib.public.id) && performance.now() < end) await Bun.sleep(20);
  expect(a.node.status().links.some((l) => l.peer === ib.public.id)).toBe(true);
  openB();
  await startedB;
  answerPings(a);
  answerPings(b);
  // b's router takes what the link carries: the link stays alive at a, and a ping goes through.
  await ping(a, b, 1, { timeoutMs: 10_000, everyMs: 50 });
  expect(b.node.status().links.find((l) => l.peer === ia.public.id)?.alive).toBe(true);
  expect(a.node.status().links.find((l) => l.peer === ib.public.id)?.alive).toBe(true);
}, 30_000);
