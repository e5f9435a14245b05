// netcheck's verdicts: what the measurements (./probe.ts) mean, one plain line each with what to do.
// Pure: the CLI prints these, the tests feed it measurements.
import type { Probe, SeedProbe } from "./probe.ts";

export type Level = "ok" | "warn" | "fail" | "info";

export interface Finding {
  /** Which check: udp, nat, seed, mtu, peer. */
  check: string;
  level: Level;
  /** What was found. */
  text: string;
  /** What to do about it (empty when nothing needs doing). */
  todo: string;
}

/** NAT mapping behaviour (RFC 4787) from the addresses the seeds saw. */
export type Mapping = "none" | "endpoint-independent" | "endpoint-dependent" | "unknown" | "no-udp";

/** What the node says about a peer (GET /v1/status), or why it could not say. */
export type PeerInfo =
  | { name: string; found: true; path: string | null; link: string; underlay: string | null }
  | { name: string; found: false; why: string };

export function mappingOf(p: Probe): Mapping {
  const answered = p.seeds.filter((s) => s.udp);
  if (answered.length === 0) return "no-udp";
  if (answered.every((s) => p.local.addresses.includes(s.udp!.mapped.address) && s.udp!.mapped.port === p.local.port)) return "none";
  // Only seeds at different addresses tell whether the mapping depends on the destination.
  const distinct = new Map(answered.map((s) => [`${s.address}:${s.port}`, s]));
  if (distinct.size < 2) return "unknown";
  const mapped = new Set(answered.map((s) => `${s.udp!.mapped.address}:${s.udp!.mapped.port}`));
  return mapped.size === 1 ? "endpoint-independent" : "endpoint-dependent";
}

const ms = (x: number) => `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`;
const hostOf = (s: SeedProbe) => `${s.host}:${s.port}`;

export function findings(p: Probe, peer?: PeerInfo): Finding[] {
  const out: Finding[] = [];
  const add = (check: string, level: Level, text: string, todo = "") => out.push({ check, level, text, todo });
  if (p.seeds.length === 0) {
    add("seed", "fail", "no seeds configured: nothing to measure against", "add seeds to [network] seeds (or pass --seed URL)");
    return out;
  }
  const answered = p.seeds.filter((s) => s.udp);
  const mapping = mappingOf(p);

  // UDP.
  if (answered.length === 0) add("udp", "fail", `UDP: no STUN answer from any of ${p.seeds.length} seed(s): UDP to them is blocked (or they are down)`, "no direct links or UDP relays from here: allow outbound UDP to the seeds' ports (relays over the seed's TLS WebSocket are the fallback where seeds offer it)");
  else if (answered.length < p.seeds.length) add("udp", "warn", `UDP: ${answered.length} of ${p.seeds.length} seeds answered STUN (${answered.map(hostOf).join(", ")})`, `check UDP to ${p.seeds.filter((s) => !s.udp).map(hostOf).join(", ")} (firewall, or the seed is down)`);
  else add("udp", "ok", `UDP: sends and receives (every seed answered STUN, ${answered.map((s) => ms(s.udp!.rtt_ms)).join(", ")})`);

  // The NAT.
  const seen = [...new Set(answered.map((s) => `${s.udp!.mapped.address}:${s.udp!.mapped.port}`))].join(", ");
  switch (mapping) {
    case "none":
      add("nat", "ok", `NAT: none, this host's own address ${seen} is what seeds see`, "peers can reach it directly as long as a firewall lets the link's UDP in");
      break;
    case "endpoint-independent":
      add("nat", "ok", `NAT: endpoint-independent mapping (every seed saw ${seen}): hole punching works, direct links form with most peers`);
      break;
    case "endpoint-dependent":
      add("nat", "warn", `NAT: endpoint-dependent mapping (symmetric; seeds saw ${seen}): direct links form only with peers that have a public address or an endpoint-independent NAT`, "traffic with other peers goes through relays; a port forward, UPnP/NAT-PMP, or a router with endpoint-independent mapping gives direct links");
      break;
    case "unknown":
      add("nat", "info", `NAT: ${p.local.addresses.includes(answered[0].udp!.mapped.address) ? "none seen" : `behind one (seen as ${seen})`}; whether its mapping depends on the destination needs two seeds`, "add a second seed at another address to [network] seeds to tell");
      break;
    case "no-udp":
      add("nat", "info", "NAT: unknown (no UDP answers)");
  }

  // Each seed: HTTP(S), then path MTU.
  for (const s of p.seeds) {
    const proto = s.tls ? "HTTPS" : "HTTP";
    if (!s.address) add("seed", "fail", `seed ${s.url}: the name ${s.host} does not resolve`, "check the name in [network] seeds and this host's DNS");
    else if ("error" in s.http) {
      const tlsErr = s.tls && /cert|tls|ssl|self.signed|verify/i.test(s.http.error);
      add("seed", "fail", `seed ${s.url}: ${proto} ${tlsErr ? "TLS failed" : "unreachable"} (${s.http.error})`, tlsErr ? "the seed's certificate is not trusted here: give the seed one from a public CA, or trust its CA on this host (NODE_EXTRA_CA_CERTS=/path/ca.pem in trellis's environment)" : `check that the seed runs and that TCP ${s.port} is open to it`);
    } else if (s.http.status >= 500) add("seed", "warn", `seed ${s.url}: ${proto} answers ${s.http.status}`, "look at the seed's log");
    else add("seed", "ok", `seed ${s.url}: ${proto} reachable in ${ms(s.http.rtt_ms)}${s.tls ? `, TLS verified (first request with handshake ${ms(s.http.first_ms)})` : ` (first request ${ms(s.http.first_ms)})`}${s.tls ? "" : "; not TLS: fine on a LAN, use https:// on the internet"}`);
    if (!s.udp) continue;
    if (s.mtu === null) add("mtu", "warn", `path MTU to ${hostOf(s)}: no padded probe came back (even ${576} bytes)`, "something drops large or fragmented UDP on the path; trellis still works (frames fall back to the data channel)");
    else if (s.mtu >= 1500) add("mtu", "ok", `path MTU to ${hostOf(s)}: ${s.mtu} bytes or more`);
    else add("mtu", "info", `path MTU to ${hostOf(s)}: ${s.mtu} bytes (less than Ethernet's 1500${s.mtu_sent_max !== null && s.mtu_sent_max < 1500 ? "; the kernel already knew" : ""})`, "nothing to do: trellis keeps 1500-byte packets whole over it (it fragments inside the overlay and answers 'packet too big')");
  }

  // One peer.
  if (peer) {
    if (!peer.found) add("peer", "info", `direct link to ${peer.name}: ${peer.why}`, "");
    else if (peer.link === "open" && peer.path === "direct") add("peer", "ok", `direct link to ${peer.name}: up now${peer.underlay ? ` (${peer.underlay})` : ""}`);
    else {
      const now = peer.path ? `now ${peer.path === "direct" ? "direct" : "through relays"}` : peer.link === "connecting" ? "a link is being set up" : "no traffic yet";
      const likely: [Level, string, string] =
        mapping === "no-udp" ? ["fail", "no, UDP is blocked here", "relays carry the traffic; allow outbound UDP for a direct link"]
        : mapping === "none" || mapping === "endpoint-independent" ? ["ok", "likely: this side's NAT lets hole punching work (unless the peer is behind a symmetric NAT too strict to punch; run netcheck there)", ""]
        : mapping === "endpoint-dependent" ? ["warn", "unlikely unless the peer has a public address or an endpoint-independent NAT: this side's NAT is symmetric", "run netcheck on the peer; a port forward here makes it likely"]
        : ["info", "cannot tell: whether this NAT's mapping depends on the destination needs two seeds", "add a second seed to [network] seeds"];
      add("peer", likely[0], `direct link to ${peer.name}: ${likely[1]} (${now})`, likely[2]);
    }
  }
  return out;
}

/** One line per finding: level, what, and what to do. */
export function formatFindings(f: Finding[]): string {
  const tag: Record<Level, string> = { ok: "ok  ", warn: "WARN", fail: "FAIL", info: "info" };
  return f.map((x) => `${tag[x.level]}  ${x.text}${x.todo ? ` — ${x.todo}` : ""}`).join("\n") + "\n";
}
