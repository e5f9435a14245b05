// The views the API and CLI show: this node, its peers and the path to each, links, relays, counters.
import { ipv6Of } from "../identity/address.ts";
import type { NodeId } from "../identity/identity.ts";
import type { Config } from "../config/schema.ts";
import type { Inside } from "../datapath/inside.ts";
import type { Hold } from "../datapath/hold.ts";
import type { Outside } from "../datapath/outside.ts";
import type { Peer, PeerTable } from "../datapath/peers.ts";
import type { LinkReport, Router } from "../route/router.ts";
import type { PolicyView } from "../route/steering.ts";
import type { Sessions } from "../session/sessions.ts";
import { gcmKind, gcmWhyNot } from "../session/gcm.ts";
import type { Links } from "../tether/links.ts";
import type { TunDevice } from "../tun/device.ts";
import type { Admission } from "./admission.ts";
import type { Routes, RoutesStatus } from "./routes.ts";

export interface PeerStatus {
  id: NodeId;
  name: string | null;
  ipv6: string;
  ipv4: string | null;
  path: string | null;
  paths: { name: string; alive: boolean; rtt_ms: number | null; loss: number; cost: number }[];
  /** Why this path: "direct link live", the policy's pick with its index, or the rule's. */
  why: string | null;
  rtt_ms: number | null;
  link: "none" | "connecting" | "open";
  /** The direct link's far end on the underlay ("198.18.1.2:40000 srflx"), when there is one. */
  underlay: string | null;
  /** IP bytes sent to and received from the peer through the overlay since start. */
  tx_bytes: number;
  rx_bytes: number;
  session: boolean;
  allowed: boolean;
  spoof_drops: number;
}

export interface NodeStatus {
  node: { id: NodeId; name: string; ipv6: string; ipv4: string | null; ipv4_all: string[]; tun: string; mtu: number; seed: boolean; uptime_s: number };
  peers: PeerStatus[];
  links: LinkReport[];
  relay: { enabled: boolean; load: number; forwarded: number; forwarded_bytes: number; sources: number; records: number };
  counters: Record<string, number>;
  /** Subnet routes: what this node advertises, and the routes it accepted with their routers. */
  routes: RoutesStatus;
  /**
   * Segmentation offloads in use: "udp gso" / "udp gro" when some link's socket uses them, "tun gro" /
   * "tun tso" from the TUN, "gcm libcrypto" when data packets are sealed in batches through the system's
   * libcrypto; fallbacks taken (a socket where the kernel refused GSO, an offload turned off or
   * unavailable here, node:crypto sealing and why), each once.
   */
  offload: { features: string[]; fallbacks: string[] };
}

export interface PathView {
  peer: NodeId;
  name: string | null;
  path: string | null;
  why: string | null;
  candidates: PeerStatus["paths"];
  policy: PolicyView | null;
}

/** What the views read: the node's parts, read-only. */
export interface StatusSource {
  id: NodeId;
  config: Config;
  mtu: number;
  startedAt: number;
  seed: boolean;
  tun?: TunDevice;
  peers: PeerTable;
  admission: Admission;
  sessions: Sessions;
  router: Router;
  links: Links;
  inside: Inside;
  outside: Outside;
  /** Packets waiting for something pending, held and dropped per kind (src/datapath/hold.ts). */
  hold: Hold;
  routes: Routes;
}

/** A peer's name: from its session, else from the certificate it showed when linking (relays we never talk to end to end). */
function nameOf(s: StatusSource, p: Peer | undefined): string | null {
  return p ? (p.name ?? s.admission.memberships.get(p.id)?.name ?? null) : null;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : "untried");

/** The path packets to `id` take now ("direct", or "relay:<id>" per hop), or null when there is none. */
export function pathTo(s: StatusSource, id: NodeId): string | null {
  return s.sessions.isEstablished(id) ? s.router.pathTo(id) : null;
}

function candidates(s: StatusSource, id: NodeId): PeerStatus["paths"] {
  return s.router.report(id).map((r) => ({ name: r.name, alive: r.alive, rtt_ms: r.rttMs === undefined ? null : r3(r.rttMs), loss: r3(r.loss), cost: r.cost }));
}

/** Why packets to `id` take the path they take, in a few words. */
export function why(s: StatusSource, id: NodeId): string | null {
  const path = pathTo(s, id);
  if (!path) return null;
  if (path === "direct") return "direct link live (preferred while its loss is within 0.2 of the best relay's)";
  const p = s.router.policyReport(id);
  const first = path.split(" ")[0];
  if (!p || !p.choice) return "only relay path, or policy not started yet (lowest cost: rtt × (1 + 10·loss) + 5 ms)";
  const mine = p.indices.find((i) => i.arm === first);
  const others = p.indices.filter((i) => i.arm !== first).map((i) => `${i.arm.slice(0, 14)} ${fmt(i.index)}`).join(", ");
  if (p.choice !== first) return `policy chose ${p.choice.slice(0, 14)} but it is not live; rule picked this one`;
  return `policy (discounted UCB, round ${p.round}): index ${fmt(mine?.index ?? NaN)} vs ${others || "no other"}`;
}

/** GET /v1/status, `trellis status`. */
export function nodeStatus(s: StatusSource): NodeStatus {
  const c = s.config;
  const peers = s.peers.all().map((p): PeerStatus => {
    const link = s.links.link(p.id);
    return {
      id: p.id,
      name: nameOf(s, p),
      ipv6: p.ipv6,
      ipv4: p.ipv4 ?? null,
      path: pathTo(s, p.id),
      paths: candidates(s, p.id),
      why: why(s, p.id),
      rtt_ms: p.rttMs === undefined ? null : r3(p.rttMs),
      link: link ? (link.state === "open" ? "open" : link.state === "connecting" ? "connecting" : "none") : "none",
      underlay: link?.state === "open" ? (link.remote ?? null) : null,
      tx_bytes: p.txBytes,
      rx_bytes: p.rxBytes,
      session: s.sessions.isEstablished(p.id),
      allowed: s.admission.allow.has(p.id),
      spoof_drops: p.spoofDrops,
    };
  });
  const ipv4s = s.admission.ipv4s;
  const ts = s.tun?.stats;
  return {
    node: {
      id: s.id,
      name: c.node.name,
      ipv6: ipv6Of(s.id),
      ipv4: ipv4s[0]?.address ?? null,
      ipv4_all: ipv4s.map((a) => a.address),
      tun: s.tun?.name ?? c.tun.name,
      mtu: s.mtu,
      seed: s.seed,
      uptime_s: Math.round((Date.now() - s.startedAt) / 1000),
    },
    peers,
    links: s.router.linksReport().map((l) => ({ ...l, fast: s.links.link(l.peer)?.fastStats ?? null })),
    relay: { enabled: c.relay.enabled, load: s.router.load(), forwarded: s.router.stats.forwarded, forwarded_bytes: s.router.stats.forwardedBytes, sources: s.router.sources, records: s.router.recordCount },
    counters: {
      tun_rx_packets: ts?.rxPackets ?? 0,
      tun_tx_packets: ts?.txPackets ?? 0,
      tun_tx_dropped: ts?.txDropped ?? 0,
      // Where packets are lost at the TUN: CoDel on the reads' wait; the kernel's queue in front of our
      // reads (its tx_dropped); the ring to the writer full, CoDel in the writer, the device refusing.
      tun_rx_codel_dropped: ts?.rxDropped ?? 0,
      tun_kernel_dropped: ts?.kernelDropped ?? 0,
      tun_tx_ring_full: ts?.txDrops?.ringFull ?? 0,
      tun_tx_codel_dropped: ts?.txDrops?.codel ?? 0,
      tun_tx_refused: ts?.txDrops?.refused ?? 0,
      too_big_sent: s.inside.tooBig.sent,
      inside_no_route: s.inside.stats.noRoute,
      member_lookup_held: s.hold.stats.member.held,
      member_lookup_dropped: s.hold.stats.member.dropped,
      session_queueDropped: s.hold.stats.handshake.dropped,
      ...Object.fromEntries(Object.entries(s.hold.stats).flatMap(([k, c]) => [[`hold_${k}_held`, c.held], [`hold_${k}_dropped`, c.dropped]])),
      hold_waiting: s.hold.size,
      outside_spoofed: s.outside.stats.spoofed,
      outside_not_for_us: s.outside.stats.notForUs,
      outside_policy_dropped: s.outside.stats.policyDropped,
      ...Object.fromEntries(Object.entries(s.sessions.stats).map(([k, v]) => [`session_${k}`, Number(v)])),
      ...Object.fromEntries(Object.entries(s.router.stats).map(([k, v]) => [`route_${k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`)}`, Number(v)])),
    },
    routes: s.routes.status(),
    offload: offload(s),
  };
}

function offload(s: StatusSource): NodeStatus["offload"] {
  const features = new Set<string>(s.tun?.offload ?? []), fallbacks = new Set<string>();
  for (const l of s.router.linksReport()) {
    for (const f of s.links.link(l.peer)?.fastStats?.offload ?? []) {
      if (f === "gso" || f === "gro") features.add(`udp ${f}`);
      else fallbacks.add(`udp ${f}`);
    }
  }
  if (process.env.TRELLIS_UDP_GSO === "0") fallbacks.add("udp gso off (TRELLIS_UDP_GSO=0)");
  if (process.env.TRELLIS_UDP_GRO === "0") fallbacks.add("udp gro off (TRELLIS_UDP_GRO=0)");
  if (s.tun && !s.tun.offload?.includes("tun gro")) fallbacks.add("tun gro unavailable");
  if (s.tun && !s.tun.offload?.includes("tun tso")) fallbacks.add(process.env.TRELLIS_TUN_TSO === "0" ? "tun tso off (TRELLIS_TUN_TSO=0)" : "tun tso unavailable");
  // The data cipher: batches through libcrypto (ffi/gcm.c), or node:crypto and why.
  if (gcmKind === "libcrypto") features.add("gcm libcrypto");
  else if (gcmKind === "node") fallbacks.add(`gcm node:crypto (${gcmWhyNot})`);
  return { features: [...features].sort(), fallbacks: [...fallbacks].sort() };
}

/** Every destination the path policy tracks, with candidates, features, indices and choice (GET /v1/paths). */
export function pathViews(s: StatusSource): PathView[] {
  return s.peers.all().map((p) => {
    const policy = s.router.policyReport(p.id) ?? null;
    return {
      peer: p.id,
      name: nameOf(s, p),
      path: pathTo(s, p.id),
      why: why(s, p.id),
      candidates: candidates(s, p.id),
      policy: policy && { ...policy, indices: policy.indices.map((i) => ({ ...i, index: Number.isFinite(i.index) ? i.index : -1, bonus: Number.isFinite(i.bonus) ? i.bonus : -1 })) },
    };
  });
}

/** The relays this node links to, with their measurements (GET /v1/relays, `trellis relays`). */
export function relayViews(s: StatusSource): (LinkReport & { name: string | null; chosen_for: number; load: number | null })[] {
  const chosen = new Map<string, number>();
  for (const p of s.peers.all()) {
    const path = pathTo(s, p.id);
    if (path?.startsWith("relay:")) chosen.set(path.slice(6, 38), (chosen.get(path.slice(6, 38)) ?? 0) + 1);
  }
  return s.router.linksReport().filter((l) => l.relay).map((l) => ({ ...l, name: nameOf(s, s.peers.get(l.peer)), chosen_for: chosen.get(l.peer) ?? 0, load: s.router.record(l.peer)?.load ?? null }));
}
