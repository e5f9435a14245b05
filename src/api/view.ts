// What the page shows, in one JSON snapshot: this node and its networks, every peer with its path and
// throughput, the relays with the path policy's scores, the links to draw, and the recent path decisions.
import type { Node } from "../node/node.ts";

/** The parts of Node the view reads (a test passes a stand-in). */
export type ViewSource = Pick<Node, "status" | "paths" | "relays" | "weights" | "networkList" | "recent">;

export interface ViewPeer {
  id: string;
  name: string | null;
  ipv6: string;
  ipv4: string | null;
  /** The direct link's far end on the underlay, when there is one. */
  underlay: string | null;
  /** "direct", "relay:<id> relay:<id>..." or null (no session yet). */
  path: string | null;
  /** The relays the path goes through, in order ([] when direct or none). */
  via: string[];
  why: string | null;
  /** RTT of the path in use: the overlay ping's when measured, else its first hop's. */
  rtt_ms: number | null;
  loss: number | null;
  tx_bps: number;
  rx_bps: number;
  link: "none" | "connecting" | "open";
  session: boolean;
  /** A relay this node links to (drawn in the middle column). */
  relay: boolean;
}

export interface ViewRelay {
  id: string;
  name: string | null;
  alive: boolean;
  rtt_ms: number | null;
  jitter_ms: number | null;
  loss: number;
  load: number | null;
  carrying: number;
  uptime_s: number;
  failures: number;
  /** The path policy's view of this relay for each destination it could carry: last reward, index, chosen. */
  scores: { peer: string; name: string | null; reward: number | null; index: number | null; chosen: boolean; choices: number }[];
}

export interface ViewLink {
  peer: string;
  relay: boolean;
  alive: boolean;
  rtt_ms: number | null;
  loss: number;
}

export interface ViewEvent {
  t: number;
  peer: string;
  name: string | null;
  kind: "change" | "decision";
  text: string;
}

export interface View {
  t: number;
  node: ReturnType<Node["status"]>["node"] & { relay: boolean };
  networks: ReturnType<Node["networkList"]>;
  weights: Node["weights"];
  peers: ViewPeer[];
  relays: ViewRelay[];
  links: ViewLink[];
  events: ViewEvent[];
}

/** Throughput from the peers' byte counters: the rate over the last interval of at least `minMs`. */
export class Rates {
  private last = new Map<string, { t: number; tx: number; rx: number; txBps: number; rxBps: number }>();
  constructor(private readonly minMs = 400) {}

  update(id: string, t: number, tx: number, rx: number): { tx: number; rx: number } {
    const s = this.last.get(id);
    if (!s) {
      this.last.set(id, { t, tx, rx, txBps: 0, rxBps: 0 });
      return { tx: 0, rx: 0 };
    }
    const dt = t - s.t;
    if (dt >= this.minMs) {
      s.txBps = Math.max(0, ((tx - s.tx) * 8 * 1000) / dt);
      s.rxBps = Math.max(0, ((rx - s.rx) * 8 * 1000) / dt);
      Object.assign(s, { t, tx, rx });
    }
    return { tx: Math.round(s.txBps), rx: Math.round(s.rxBps) };
  }
}

const relaysOf = (path: string | null): string[] => (path && path !== "direct" ? path.split(" ").map((h) => h.replace(/^relay:/, "")) : []);

/** Build the snapshot the page renders. */
export function buildView(node: ViewSource, rates: Rates, now = Date.now()): View {
  const status = node.status();
  const paths = new Map(node.paths().map((p) => [p.peer, p]));
  const relays = node.relays();
  const relayIds = new Set(relays.map((r) => r.peer));
  const names = new Map<string, string | null>(status.peers.map((p) => [p.id, p.name]));
  const nameOf = (id: string) => names.get(id) ?? null;

  const peers: ViewPeer[] = status.peers.map((p) => {
    const via = relaysOf(p.path);
    const first = p.path?.split(" ")[0];
    const hop = p.paths.find((c) => c.name === first);
    const r = rates.update(p.id, now, p.tx_bytes, p.rx_bytes);
    return {
      id: p.id,
      name: p.name,
      ipv6: p.ipv6,
      ipv4: p.ipv4,
      underlay: p.underlay,
      path: p.path,
      via,
      why: p.why,
      rtt_ms: p.rtt_ms ?? hop?.rtt_ms ?? null,
      loss: hop ? hop.loss : null,
      tx_bps: r.tx,
      rx_bps: r.rx,
      link: p.link,
      session: p.session,
      relay: relayIds.has(p.id),
    };
  });

  const viewRelays: ViewRelay[] = relays.map((l) => {
    const arm = `relay:${l.peer}`;
    const scores: ViewRelay["scores"] = [];
    for (const p of paths.values()) {
      const pol = p.policy;
      if (!pol) continue;
      const idx = pol.indices.find((i) => i.arm === arm);
      if (!idx && !(arm in pol.rewards)) continue;
      scores.push({
        peer: p.peer,
        name: p.name,
        reward: pol.rewards[arm] ?? null,
        index: idx && idx.index >= 0 ? Math.round(idx.index * 1000) / 1000 : null,
        chosen: pol.choice === arm,
        choices: pol.choices[arm] ?? 0,
      });
    }
    return { id: l.peer, name: l.name, alive: l.alive, rtt_ms: l.rtt_ms, jitter_ms: l.jitter_ms, loss: l.loss, load: l.load, carrying: l.chosen_for, uptime_s: l.uptime_s, failures: l.failures, scores };
  });

  const events: ViewEvent[] = [];
  const decisionEvent = (d: (typeof node.recent.decisions)[number], why: "switch" | "latest"): ViewEvent => {
    const parts = d.candidates.map((c) => `${hop(c.path).replace(/^via /, "")} ${c.reward.toFixed(2)}`).join(", ");
    const verb = why === "switch" ? "policy switched to" : "policy keeps";
    return { t: d.t, peer: d.dst, name: nameOf(d.dst), kind: "decision", text: `${verb} ${d.choice ? hop(d.choice) : "no relay"} (round ${d.round}; rewards ${parts || "none"})` };
  };
  const hop = (path: string | null) => (path === null ? "none" : path === "direct" ? "direct" : `via ${relaysOf(path).map((id) => nameOf(id) ?? id.slice(0, 8)).join(" → ")}`);
  for (const c of node.recent.changes) events.push({ t: c.t, peer: c.dst, name: nameOf(c.dst), kind: "change", text: c.from === null ? `first packets ${hop(c.to)}` : `${hop(c.from)} → ${hop(c.to)}` });
  // Policy decisions: the ones that switched relays, and the latest for each destination.
  const prev = new Map<string, string | undefined>();
  const latest = new Map<string, (typeof node.recent.decisions)[number]>();
  for (const d of node.recent.decisions) {
    const before = prev.get(d.dst);
    if (prev.has(d.dst) && before !== d.choice) events.push(decisionEvent(d, "switch"));
    prev.set(d.dst, d.choice);
    latest.set(d.dst, d);
  }
  for (const d of latest.values()) events.push(decisionEvent(d, "latest"));
  events.sort((a, b) => b.t - a.t);

  return {
    t: now,
    node: { ...status.node, relay: status.relay.enabled },
    networks: node.networkList(),
    weights: node.weights,
    peers,
    relays: viewRelays,
    links: status.links.map((l) => ({ peer: l.peer, relay: l.relay, alive: l.alive, rtt_ms: l.rtt_ms, loss: l.loss })),
    events: events.slice(0, 40),
  };
}
