// `trellis relays`: the relays this node links to, as the path policy sees them, from the node's API.
import type { Node } from "../node/node.ts";
import { apiBase, apiGet } from "./api-client.ts";
import { parse } from "./args.ts";

export const help = `Usage: trellis relays [--config FILE] [--api HOST:PORT] [--json]

List the relays this node is linked to with what the path policy measures:
smoothed RTT and jitter (mean deviation) of the link, probe loss, the load the
relay advertises in its signed record (percent of max_peers or of its bandwidth
cap, whichever is higher), uptime, how
often the link went silent, and how many peers' packets go through it now.
Then, for each peer reached through relays, the policy's index and last reward
for each relay path (discounted UCB; higher is better) and the one chosen.

  --config FILE    config file, to find [api] listen (default /etc/trellis/trellis.toml)
  --api HOST:PORT  talk to the API at this address instead
  --json           print the API's JSON (GET /v1/relays and /v1/paths) as is
`;

type Relays = ReturnType<Node["relays"]>;
type Paths = { weights: Record<string, number>; paths: ReturnType<Node["paths"]> };

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: "string", short: "c" }, api: { type: "string" }, json: { type: "boolean" } });
  if (values.help) return (process.stdout.write(help), 0);
  const base = apiBase(values);
  const relays = await apiGet<Relays>(base, "/v1/relays");
  const paths = await apiGet<Paths>(base, "/v1/paths");
  if (values.json) {
    console.log(JSON.stringify({ relays, paths }, null, 2));
    return 0;
  }
  if (relays.length === 0) {
    console.log("no relays linked (seeds announce theirs; a relay's record names the others)");
    return 0;
  }
  const ms = (x: number | null) => (x === null ? "-" : `${x.toFixed(2)} ms`);
  const rows = [["RELAY", "NAME", "LIVE", "RTT", "JITTER", "LOSS", "LOAD", "UP", "FAILS", "CARRYING"]];
  for (const r of relays)
    rows.push([r.peer.slice(0, 12), r.name ?? "-", r.alive ? "yes" : "no", ms(r.rtt_ms), ms(r.jitter_ms), `${(r.loss * 100).toFixed(1)}%`, r.load === null ? "-" : `${r.load}%`, `${r.uptime_s}s`, String(r.failures), `${r.chosen_for} peer(s)`]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
  const w = paths.weights;
  console.log(`\npath policy: discounted UCB, reward weights latency ${w.latency}, loss ${w.loss}, goodput ${w.goodput}`);
  for (const p of paths.paths) {
    if (!p.policy) continue;
    console.log(`  to ${p.name ?? p.peer.slice(0, 12)} (round ${p.policy.round}): ${p.path ?? "-"}`);
    for (const i of p.policy.indices) {
      const chosen = i.arm === p.policy.choice ? "  <- chosen" : "";
      console.log(`    ${i.arm.slice(0, 18)}  index ${i.index < 0 ? "untried" : i.index.toFixed(3)}  reward ${(p.policy.rewards[i.arm] ?? 0).toFixed(3)}${chosen}`);
    }
  }
  return 0;
}
