// One process of emulated peers for bench/peers-load.ts: whole nodes (src/node/node.ts) with memory TUNs
// and the real link manager: werift ICE/DTLS/SCTP, signalling through the seed, session handshakes.
// Each linked to one relay (its seed). Not run alone; the driver spawns it inside a namespace.
//   bun bench/peers-worker.ts --first I --count K --seed URL --relay ID --dir D
// Prints "up K" once K nodes have an open link to the relay, then "rss MB" whenever it reads a line.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseConfig } from "../src/config/load.ts";
import { setLogLevel } from "../src/log.ts";
import { createMemoryTun } from "../src/tun/memory.ts";
import { Node } from "../src/node/node.ts";
import { benchIdentity } from "./peers-ids.ts";
import "./heap-preload.ts"; // --idle-prof: the sampling profile of an idle window (SIGUSR1)

const { values } = parseArgs({ options: { first: { type: "string" }, count: { type: "string" }, seed: { type: "string" }, relay: { type: "string" }, dir: { type: "string" }, stagger: { type: "string", default: "40" } } });
const first = Number(values.first), count = Number(values.count), stagger = Number(values.stagger);
setLogLevel("error");

const nodes: Node[] = [];
async function stop(): Promise<void> {
  await Promise.race([Promise.allSettled(nodes.map((n) => n.stop())), Bun.sleep(2000)]);
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

for (let i = first; i < first + count; i++) {
  const identity = benchIdentity(i);
  const dir = join(values.dir!, `p${i}`);
  mkdirSync(dir, { recursive: true });
  const config = parseConfig(
    `[node]\nname = "p${i}"\nstate_dir = "${dir}"\n[network]\nseeds = ["${values.seed}"]\nallow = ["${values.relay}"]\n[tun]\nname = "mem${i}"\n[relay]\nenabled = false\n`,
    `p${i}.toml`,
  );
  const node = new Node(config, identity, { openTun: async () => createMemoryTun(`mem${i}`, 1500) });
  nodes.push(node);
  await node.start();
  // Staggered: a thousand DTLS handshakes at once would measure the harness, not the relay.
  await Bun.sleep(stagger);
}

const linked = () => nodes.filter((n) => n.status().links?.some((l: { alive: boolean }) => l.alive)).length;
let reported = -1;
while (true) {
  const up = linked();
  if (up !== reported) console.log(`up ${up}`);
  reported = up;
  if (up === count) break;
  await Bun.sleep(500);
}
for await (const line of console) {
  if (line.trim() === "rss") console.log(`rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(1)} linked ${linked()}`);
}
