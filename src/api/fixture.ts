// A stand-in node for the page's tests: alpha with a relay (seed), a direct peer (bravo) and a relayed one (charlie).
import { RecentPaths } from "../route/decisions.ts";
import type { ViewSource } from "./view.ts";

export const IDS = {
  self: "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
  seed: "5eed5eed5eed5eed5eed5eed5eed5eed",
  bravo: "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2",
  charlie: "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
} as const;

type Status = ReturnType<ViewSource["status"]>;
type Peer = Status["peers"][number];

/** A node whose peers' byte counters and paths the test may change between snapshots. */
export function fakeNode(now = () => Date.now()) {
  const recent = new RecentPaths(50, now);
  const peer = (id: string, name: string, path: string | null, extra: Partial<Peer> = {}): Peer => ({
    id: id as Peer["id"], name, ipv6: `fd7a:7e11:${id.slice(0, 4)}::1`, ipv4: null, path, paths: [], why: null, rtt_ms: null,
    link: "none", underlay: null, tx_bytes: 0, rx_bytes: 0, session: path !== null, allowed: true, spoof_drops: 0, ...extra,
  });
  const peers: Peer[] = [
    peer(IDS.seed, "seed", "direct", { link: "open", underlay: "198.18.0.2:7443 host", paths: [{ name: "direct", alive: true, rtt_ms: 0.41, loss: 0, cost: 0.41 }] }),
    peer(IDS.bravo, "bravo", "direct", { ipv4: "100.64.0.3", link: "open", underlay: "198.18.2.2:51000 srflx", rtt_ms: 0.62, why: "direct link live", paths: [{ name: "direct", alive: true, rtt_ms: 0.55, loss: 0, cost: 0.55 }, { name: `relay:${IDS.seed}`, alive: true, rtt_ms: 0.41, loss: 0, cost: 5.41 }] }),
    peer(IDS.charlie, "charlie", `relay:${IDS.seed}`, { rtt_ms: 1.9, why: "policy (discounted UCB, round 12)", paths: [{ name: `relay:${IDS.seed}`, alive: true, rtt_ms: 0.41, loss: 0.01, cost: 5.41 }] }),
  ];
  const links: Status["links"] = [
    { peer: IDS.seed as Peer["id"], relay: true, alive: true, rtt_ms: 0.41, jitter_ms: 0.05, loss: 0, uptime_s: 120, failures: 0, transport: "udp" },
    { peer: IDS.bravo as Peer["id"], relay: false, alive: true, rtt_ms: 0.55, jitter_ms: 0.04, loss: 0, uptime_s: 60, failures: 0, transport: "udp" },
  ];
  const node: ViewSource & { peersList: Peer[]; linksList: Status["links"] } = {
    peersList: peers,
    linksList: links,
    recent,
    weights: { latency: 0.5, loss: 0.3, goodput: 0.2 },
    status: () => ({
      node: { id: IDS.self as Peer["id"], name: "alpha", ipv6: "fd7a:7e11:a1a1::1", ipv4: "100.64.0.2", ipv4_all: ["100.64.0.2"], tun: "trellis0", mtu: 1500, seed: false, uptime_s: 3725 },
      peers: node.peersList,
      links: node.linksList,
      relay: { enabled: false, load: 0, forwarded: 0, forwarded_bytes: 0, sources: 0, records: 0 },
      counters: {},
      routes: { advertise: [], healthy: false, health: "not a router", snat: true, exit: false, accept: false, routes: [], exit_node: null },
      offload: { features: ["tun gro", "udp gro", "udp gso"], fallbacks: [] },
    }),
    paths: () =>
      node.peersList.map((p) => ({
        peer: p.id, name: p.name, path: p.path, why: p.why, candidates: p.paths,
        policy: p.id === IDS.charlie
          ? { choice: `relay:${IDS.seed}`, rule: null, round: 12, indices: [{ arm: `relay:${IDS.seed}`, n: 4.2, mean: 0.81, bonus: 0.05, index: 0.86 }], rewards: { [`relay:${IDS.seed}`]: 0.81 }, goodput_bps: { [`relay:${IDS.seed}`]: 5e6 }, choices: { [`relay:${IDS.seed}`]: 12 } }
          : null,
      })),
    relays: () => node.linksList.filter((l) => l.relay).map((l) => ({ ...l, name: "seed", chosen_for: 1, load: 3 })),
    networkList: () => [{ id: "0f0f0f0f0f0f0f0f", name: "home", ipv4: "100.64.0.2", tags: ["laptop"], expires: 1_900_000_000 }],
  };
  return node;
}
