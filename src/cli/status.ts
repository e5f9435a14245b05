// `trellis status`: this node, its peers and the path to each, read from the running node's API.
import type { NodeStatus } from "../node/node.ts";
import { apiBase, apiGet } from "./api-client.ts";
import { parse } from "./args.ts";

export const help = `Usage: trellis status [--config FILE] [--api HOST:PORT] [--json]

Show this node (id, name, addresses) and each peer: its addresses, the path
packets take to it ("direct", or "relay:<node id>" per hop) and the last RTT,
and each link's transport: udp, or tcp where UDP is blocked and the link rides
the WebSocket to the seed's relay.

  --config FILE    config file, to find [api] listen (default /etc/trellis/trellis.toml)
  --api HOST:PORT  talk to the API at this address instead
  --json           print the API's JSON as is
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: "string", short: "c" }, api: { type: "string" }, json: { type: "boolean" } });
  if (values.help) return (process.stdout.write(help), 0);
  const s = await apiGet<NodeStatus>(apiBase(values), "/v1/status");
  if (values.json) {
    console.log(JSON.stringify(s, null, 2));
    return 0;
  }
  const n = s.node;
  console.log(`node   ${n.name}  ${n.id}`);
  console.log(`addr   ${n.ipv6}${n.ipv4 ? `  ${n.ipv4}` : ""}  on ${n.tun} (mtu ${n.mtu})${n.seed ? "  [seed]" : ""}`);
  console.log(`up     ${n.uptime_s}s`);
  if (s.offload) console.log(`offload ${s.offload.features.join(", ") || "none"}${s.offload.fallbacks.length ? `  (${s.offload.fallbacks.join("; ")})` : ""}`);
  const r = s.routes;
  if (r?.advertise.length) console.log(`routes advertising ${r.advertise.map((a) => `${a.prefix}${a.device ? ` (${a.device})` : ""}`).join(", ")}: ${r.healthy ? "healthy" : `withdrawn (${r.health})`}${r.snat ? ", snat" : ""}`);
  for (const route of r?.routes ?? [])
    console.log(`route  ${route.prefix} via ${route.routers.map((x) => `${x.name ?? x.id.slice(0, 12)}${x.id === route.via ? "*" : ""}${x.healthy ? "" : " (down)"}`).join(", ")}`);
  if (r?.exit && !r.advertise.length) console.log(`routes exit node: ${r.healthy ? "offered" : `withdrawn (${r.health})`}`);
  const x = r?.exit_node;
  if (x) console.log(`exit   ${x.want === "auto" ? "auto: " : ""}${x.active && x.via ? `via ${x.name ?? x.via}${x.ipv6 ? ", IPv4 and IPv6" : ", IPv4 only"}${x.dns ? `, DNS ${x.dns}` : ""}` : "no healthy exit now (internet traffic waits; nothing leaks)"}${x.candidates.length ? `  (healthy: ${x.candidates.map((c) => c.name ?? c.id.slice(0, 12)).join(", ")})` : ""}`);
  if (s.peers.length === 0) {
    console.log("peers  none (add node ids to [network] allow)");
    return 0;
  }
  console.log("");
  const rows = [["PEER", "NAME", "IPV6", "IPV4", "LINK", "PATH", "RTT"]];
  for (const p of s.peers)
    rows.push([p.id.slice(0, 12), p.name ?? "-", p.ipv6, p.ipv4 ?? "-", p.link, p.path ?? "-", p.rtt_ms === null ? "-" : `${p.rtt_ms.toFixed(2)} ms`]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
  if (s.links?.length) {
    // Each link's transport: UDP (WebRTC), or TCP (the WebSocket to a relay, where UDP does not get through).
    console.log("\nlinks: " + s.links.map((l) => `${l.peer.slice(0, 12)} ${l.transport ?? "udp"}${l.relay ? " (relay)" : ""}${l.alive ? "" : " dead"}`).join(", "));
  }
  const why = s.peers.filter((p) => p.why);
  if (why.length) {
    console.log("\nwhy each path:");
    for (const p of why) console.log(`  ${(p.name ?? p.id.slice(0, 12)).padEnd(12)} ${p.why}`);
  }
  return 0;
}
