// `trellis netcheck`: what works from this host and why: UDP, the NAT's mapping, each seed's reachability,
// latency, TLS and path MTU, and whether a direct link to a peer is likely. Runs with or without the node.
import { loadConfig } from "../config/load.ts";
import { findings, formatFindings, mappingOf, type PeerInfo } from "../netcheck/findings.ts";
import { probe } from "../netcheck/probe.ts";
import type { NodeStatus } from "../node/node.ts";
import { apiBase, apiGet } from "./api-client.ts";
import { parse, UsageError } from "./args.ts";

export const help = `Usage: trellis netcheck [--config FILE] [--seed URL]... [--peer NAME] [--api HOST:PORT] [--json]

Measure what works from this host, against the seeds in [network] seeds:
  UDP       whether STUN over UDP to each seed gets an answer
  NAT       its mapping behaviour, from what two seeds saw: endpoint-independent
            (hole punching works) or endpoint-dependent (symmetric: relays carry
            traffic with most peers)
  seeds     reachability and latency over HTTP(S), TLS verified for https:// seeds
  MTU       the path MTU to each seed (padded STUN with don't-fragment set)
  --peer    whether a direct link to that peer (name or node id) is likely; asks the
            running node whether one is up now
Every finding is one line: ok, WARN, FAIL or info, what was found, and what to do.

  --config FILE    config file: seeds and [api] listen (default /etc/trellis/trellis.toml)
  --seed URL       measure against this seed instead (repeatable)
  --peer NAME      judge a direct link to this peer
  --api HOST:PORT  the node's API, for --peer (default: [api] listen from the config)
  --json           print the measurements and findings as JSON
Exit status: 0 when nothing failed, 1 when a check failed.
`;

/** What the running node says about `name` (a name, node id or id prefix). */
async function peerInfo(name: string, values: { api?: string; config?: string }): Promise<PeerInfo> {
  let status: NodeStatus;
  try {
    status = await apiGet<NodeStatus>(apiBase(values), "/v1/status");
  } catch (e) {
    return { name, found: false, why: `cannot ask the node (${(e as Error).message}); judging from this host's NAT alone is all netcheck can do without it` };
  }
  const key = name.trim().toLowerCase();
  const p = status.peers.find((x) => x.name === key) ?? status.peers.find((x) => x.id === key) ?? (key.length >= 4 ? status.peers.find((x) => x.id.startsWith(key)) : undefined);
  if (!p) return { name, found: false, why: `the node knows no peer called ${JSON.stringify(name)} (names come from certificates and handshakes; try its node id)` };
  return { name: p.name ?? p.id.slice(0, 12), found: true, path: p.path, link: p.link, underlay: p.underlay ?? null };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: "string", short: "c" },
    seed: { type: "string", multiple: true },
    peer: { type: "string" },
    api: { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) return (process.stdout.write(help), 0);
  let seeds = values.seed ?? [];
  if (seeds.length === 0) seeds = loadConfig(values.config).network.seeds;
  for (const s of seeds) if (!/^https?:\/\/[^/]+/.test(s)) throw new UsageError(`--seed ${JSON.stringify(s)}: a seed is an http:// or https:// URL`);
  const [p, peer] = await Promise.all([probe(seeds), values.peer ? peerInfo(values.peer, values) : Promise.resolve(undefined)]);
  const f = findings(p, peer);
  if (values.json) console.log(JSON.stringify({ mapping: mappingOf(p), probe: p, peer: peer ?? null, findings: f }, null, 2));
  else process.stdout.write(formatFindings(f));
  return f.some((x) => x.level === "fail") ? 1 : 0;
}
