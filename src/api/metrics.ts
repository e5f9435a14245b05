// GET /metrics: the node's state in Prometheus text format (prom-client), read fresh at each scrape.
// Every name starts with trellis_. Labels: peer (node id), path ("direct" or "relay:<id>"), relay.
import client from "prom-client";
import type { Node } from "../node/node.ts";

export function metricsRegistry(node: Node): client.Registry {
  const r = new client.Registry();
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: client.Gauge) => void) =>
    new client.Gauge({ name, help, labelNames, registers: [r], collect() { this.reset(); collect(this); } });
  gauge("trellis_path_rtt_ms", "Smoothed RTT of each candidate path's first hop (ms)", ["peer", "path"], (g) => {
    for (const p of node.paths()) for (const c of p.candidates) if (c.rtt_ms !== null) g.set({ peer: p.peer, path: c.name }, c.rtt_ms);
  });
  gauge("trellis_path_loss_ratio", "Probe loss of each candidate path's first hop (0..1)", ["peer", "path"], (g) => {
    for (const p of node.paths()) for (const c of p.candidates) g.set({ peer: p.peer, path: c.name }, c.loss);
  });
  gauge("trellis_path_alive", "1 when the path is live", ["peer", "path"], (g) => {
    for (const p of node.paths()) for (const c of p.candidates) g.set({ peer: p.peer, path: c.name }, c.alive ? 1 : 0);
  });
  gauge("trellis_path_chosen", "1 for the path packets to the peer take now", ["peer", "path"], (g) => {
    for (const p of node.paths()) for (const c of p.candidates) g.set({ peer: p.peer, path: c.name }, p.path?.split(" ")[0] === c.name ? 1 : 0);
  });
  gauge("trellis_path_reward", "The path policy's last reward for each relay path (0..1)", ["peer", "path"], (g) => {
    for (const p of node.paths()) for (const [path, v] of Object.entries(p.policy?.rewards ?? {})) g.set({ peer: p.peer, path }, v);
  });
  gauge("trellis_path_goodput_bps", "Goodput of each relay path as the policy knows it (measured while chosen, remembered otherwise)", ["peer", "path"], (g) => {
    for (const p of node.paths()) for (const [path, v] of Object.entries(p.policy?.goodput_bps ?? {})) g.set({ peer: p.peer, path }, v);
  });
  gauge("trellis_path_choices", "Policy rounds in which each relay path was chosen", ["peer", "path"], (g) => {
    for (const p of node.paths()) for (const [path, v] of Object.entries(p.policy?.choices ?? {})) g.set({ peer: p.peer, path }, v);
  });
  gauge("trellis_relay_up", "1 when the link to the relay is live", ["relay"], (g) => {
    for (const l of node.relays()) g.set({ relay: l.peer }, l.alive ? 1 : 0);
  });
  gauge("trellis_relay_rtt_ms", "Smoothed RTT to each relay (ms)", ["relay"], (g) => {
    for (const l of node.relays()) if (l.rtt_ms !== null) g.set({ relay: l.peer }, l.rtt_ms);
  });
  gauge("trellis_relay_jitter_ms", "Mean deviation of the RTT to each relay (ms)", ["relay"], (g) => {
    for (const l of node.relays()) if (l.jitter_ms !== null) g.set({ relay: l.peer }, l.jitter_ms);
  });
  gauge("trellis_relay_loss_ratio", "Probe loss to each relay (0..1)", ["relay"], (g) => {
    for (const l of node.relays()) g.set({ relay: l.peer }, l.loss);
  });
  gauge("trellis_relay_failures", "Times the link to each relay went silent", ["relay"], (g) => {
    for (const l of node.relays()) g.set({ relay: l.peer }, l.failures);
  });
  gauge("trellis_relay_load_percent", "The load each relay advertises in its signed record (percent)", ["relay"], (g) => {
    for (const l of node.relays()) if (l.load !== null) g.set({ relay: l.peer }, l.load);
  });
  gauge("trellis_relay_load_peers", "Peers whose packets go through each relay now (this node's share of its load)", ["relay"], (g) => {
    for (const l of node.relays()) g.set({ relay: l.peer }, l.chosen_for);
  });
  gauge("trellis_peer_tx_bytes", "IP bytes sent to each peer through the overlay since start (rate() gives throughput)", ["peer"], (g) => {
    for (const p of node.status().peers) g.set({ peer: p.id }, p.tx_bytes);
  });
  gauge("trellis_peer_rx_bytes", "IP bytes received from each peer through the overlay since start", ["peer"], (g) => {
    for (const p of node.status().peers) g.set({ peer: p.id }, p.rx_bytes);
  });
  gauge("trellis_forwarded_bytes", "Bytes this node forwarded as a relay", [], (g) => g.set(node.routeStats.forwardedBytes));
  gauge("trellis_forwarded_frames", "Frames this node forwarded as a relay", [], (g) => g.set(node.routeStats.forwarded));
  gauge("trellis_counter", "Node counters (TUN, sessions, routes) by name", ["name"], (g) => {
    for (const [k, v] of Object.entries(node.status().counters)) g.set({ name: k }, v);
  });
  return r;
}
