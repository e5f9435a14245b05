// The config's shape: every section and key, its type, its default, and the resolved Config the node uses.
//
// Each key has a parser that takes the raw TOML value and returns the resolved value or throws a
// KeyProblem naming what was expected; load.ts turns that into a ConfigError with file and line.
import { hostname } from "node:os";
import { parseIpv4, parseIpv6 } from "../identity/address.ts";

export interface HostPort {
  host: string;
  port: number;
}

export interface Config {
  file: string | null;
  node: { name: string; stateDir: string; ipv4?: { address: string; prefix: number }; idleTimeoutMs: number; logLevel: "debug" | "info" | "warn"; user?: string };
  /** allowIpv4: node id → the IPv4 address that allow-listed peer must have (its claim is ignored). */
  network: { seeds: string[]; allow: string[]; allowIpv4?: Record<string, string>; ca: string | null };
  tun: { name: string; mtu: number | "auto" };
  relay: {
    enabled: boolean; seed: boolean; listen: HostPort; maxPeers: number; bandwidthBps: number;
    /** PEM files: the seed serves HTTPS/WSS with them (re-read on SIGHUP). */
    tlsCert: string | null; tlsKey: string | null;
    /** Network ids the seed serves (registrations, invites); null: every network this node is in. */
    networks: string[] | null;
  };
  api: { listen: HostPort };
  paths: { weights: { latency: number; loss: number; goodput: number }; decisionLog: string | null; decisionLogMaxBytes: number };
  /** Subnet routes and exit nodes (src/route/subnets.ts, src/node/routes.ts). */
  routes: { advertise: { family: 4 | 6; address: string; prefix: number }[]; snat: boolean; accept: boolean; check: string | null; exit: boolean; exitNode: string | null; exitDns: boolean };
}

/** What was wrong with one value ("expected ..., got ..."). */
export class KeyProblem extends Error {
  constructor(readonly kind: "type" | "value", message: string) {
    super(message);
  }
}

const show = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? "an array" : typeof v === "object" ? "a table" : String(v));
const type = (want: string, v: unknown) => new KeyProblem("type", `expected ${want}, got ${show(v)}`);
const value = (want: string, v: unknown) => new KeyProblem("value", `expected ${want}, got ${show(v)}`);

function str(v: unknown): string {
  if (typeof v !== "string") throw type("a string", v);
  return v;
}
function int(v: unknown, min: number, max: number, what = `an integer from ${min} to ${max}`): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw type(what, v);
  if (v < min || v > max) throw value(what, v);
  return v;
}

export function parseName(v: unknown): string {
  const s = str(v);
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(s)) throw value("a name of 1-63 lowercase letters, digits and '-'", v);
  return s;
}

export function parseIpv4Cidr(v: unknown): { address: string; prefix: number } {
  const s = str(v);
  const [addr, len, ...rest] = s.split("/");
  const b = parseIpv4(addr);
  const prefix = len === undefined ? 10 : Number(len);
  const want = 'an IPv4 address like "100.64.0.2" or "100.64.0.2/24"';
  if (!b || rest.length || !Number.isInteger(prefix) || prefix < 1 || prefix > 32) throw value(want, v);
  if (b[0] === 0 || b[0] === 127 || b[0] >= 224) throw value(`${want} (not 0.x, loopback, multicast or reserved)`, v);
  return { address: addr, prefix };
}

export function parseDuration(v: unknown): number {
  if (typeof v === "number" && Number.isInteger(v) && v > 0) return v * 1000;
  const m = typeof v === "string" ? /^(\d+)(ms|s|m|h)$/.exec(v) : null;
  if (!m || Number(m[1]) === 0) throw (typeof v === "string" || typeof v === "number" ? value : type)('a duration like "60s", "5m", "1h" or seconds', v);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms"];
}

export function parseSeed(v: unknown): string {
  const s = str(v);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw value('a seed URL like "http://HOST:PORT"', v);
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || !u.hostname || (u.pathname !== "/" && u.pathname !== "") || u.search)
    throw value('a seed URL like "http://HOST:PORT"', v);
  if (!u.hash) return `${u.protocol}//${u.host}`;
  // A pinned certificate: "#sha256=" and the fingerprint openssl prints (src/signal/tls.ts).
  const pin = /^#sha256=([0-9a-fA-F:]+)$/.exec(u.hash)?.[1].replace(/:/g, "").toLowerCase();
  if (u.protocol !== "https:" || !pin || !/^[0-9a-f]{64}$/.test(pin)) throw value('a seed URL like "https://HOST:PORT" or "https://HOST:PORT#sha256=FINGERPRINT" (64 hex digits, colons allowed)', v);
  return `${u.protocol}//${u.host}#sha256=${pin}`;
}

export function parseListen(v: unknown): HostPort {
  const s = str(v);
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(s);
  const want = 'an address like "127.0.0.1:7080" or "[::1]:7080"';
  if (!m) throw value(want, v);
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw value(want, v);
  if (m[1] !== undefined && !parseIpv6(m[1])) throw value(want, v);
  if (m[2] !== undefined && !parseIpv4(m[2]) && !/^[a-zA-Z0-9.-]+$/.test(m[2])) throw value(want, v);
  return { host, port };
}

export function parseBandwidth(v: unknown): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  const m = typeof v === "string" ? /^(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit)$/i.exec(v) : null;
  if (!m) throw (typeof v === "string" || typeof v === "number" ? value : type)('a rate like "100mbit", "1gbit", or bits per second', v);
  return Math.round(Number(m[1]) * { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 }[m[2].toLowerCase() as "bit"]);
}

function list<T>(v: unknown, item: (x: unknown, i: number) => T): T[] {
  if (!Array.isArray(v)) throw type("an array", v);
  return v.map((x, i) => {
    try {
      return item(x, i);
    } catch (e) {
      if (e instanceof KeyProblem) throw new KeyProblem(e.kind, `entry ${i}: ${e.message}`);
      throw e;
    }
  });
}

function nodeName(): string {
  const h = hostname().toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "").slice(0, 63);
  return h || "trellis";
}

/** Every section and key: its parser and where it lands in Config. */
export const SCHEMA: Record<string, Record<string, (v: unknown, c: Config) => void>> = {
  node: {
    name: (v, c) => void (c.node.name = parseName(v)),
    state_dir: (v, c) => void (c.node.stateDir = str(v)),
    ipv4: (v, c) => void (c.node.ipv4 = parseIpv4Cidr(v)),
    idle_timeout: (v, c) => void (c.node.idleTimeoutMs = parseDuration(v)),
    user: (v, c) => {
      const s = str(v);
      if (!/^(?:[a-z_][a-z0-9_-]{0,31}|\d{1,10})$/.test(s)) throw value('a user name like "trellis" (or a uid)', v);
      c.node.user = s;
    },
    log_level: (v, c) => {
      if (v !== "debug" && v !== "info" && v !== "warn") throw (typeof v === "string" ? value : type)('one of "debug", "info", "warn"', v);
      c.node.logLevel = v;
    },
  },
  network: {
    seeds: (v, c) => void (c.network.seeds = list(v, parseSeed)),
    allow: (v, c) =>
      void (c.network.allow = list(v, (x) => {
        const s = str(x).toLowerCase();
        if (!/^[0-9a-f]{32}$/.test(s)) throw value("a node id (32 hex characters, from 'trellis init')", x);
        return s;
      })),
    allow_ipv4: (v, c) => {
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw type('a table of node id = "IPv4 address", e.g. { "8643d9f2…" = "100.64.0.5" }', v);
      const out: Record<string, string> = {};
      const taken = new Set<string>();
      for (const [k, x] of Object.entries(v)) {
        const id = k.toLowerCase();
        if (!/^[0-9a-f]{32}$/.test(id)) throw value("node ids (32 hex characters) as keys", k);
        const a = parseIpv4Cidr(x);
        if (a.prefix !== 10 && String(x).includes("/")) throw value("a bare IPv4 address (the prefix is [node] ipv4's)", x);
        if (taken.has(a.address)) throw value("a different address for each peer", x);
        taken.add(a.address);
        out[id] = a.address;
      }
      c.network.allowIpv4 = out;
    },
    ca: (v, c) => void (c.network.ca = str(v) || null),
  },
  tun: {
    name: (v, c) => {
      const s = str(v);
      if (!/^[^\s/:]{1,15}$/.test(s) || s === "." || s === "..") throw value("an interface name of 1-15 characters without '/', ':' or spaces", v);
      c.tun.name = s;
    },
    mtu: (v, c) => void (c.tun.mtu = v === "auto" ? "auto" : int(v, 1280, 65535, '"auto" or an integer from 1280 to 65535')),
  },
  relay: {
    enabled: (v, c) => {
      if (typeof v !== "boolean") throw type("true or false", v);
      c.relay.enabled = v;
    },
    seed: (v, c) => {
      if (typeof v !== "boolean") throw type("true or false", v);
      c.relay.seed = v;
    },
    listen: (v, c) => void (c.relay.listen = parseListen(v)),
    max_peers: (v, c) => void (c.relay.maxPeers = int(v, 1, 1_000_000, "an integer ≥ 1")),
    bandwidth: (v, c) => void (c.relay.bandwidthBps = parseBandwidth(v)),
    tls_cert: (v, c) => void (c.relay.tlsCert = str(v) || null),
    tls_key: (v, c) => void (c.relay.tlsKey = str(v) || null),
    networks: (v, c) =>
      void (c.relay.networks = list(v, (x) => {
        const s = str(x).toLowerCase();
        if (!/^[0-9a-f]{32}$/.test(s)) throw value("a network id (32 hex characters, from 'trellis network create')", x);
        return s;
      })),
  },
  api: {
    listen: (v, c) => void (c.api.listen = parseListen(v)),
  },
  routes: {
    advertise: (v, c) => void (c.routes.advertise = list(v, parsePrefix)),
    snat: (v, c) => void (c.routes.snat = bool(v)),
    accept: (v, c) => void (c.routes.accept = bool(v)),
    check: (v, c) => {
      const s = str(v);
      if (!parseIpv4(s) && !parseIpv6(s)) throw value('an address on the LAN to check, like "192.168.50.1"', v);
      c.routes.check = s;
    },
    exit: (v, c) => void (c.routes.exit = bool(v)),
    exit_node: (v, c) => {
      const s = str(v);
      if (s !== "auto" && s !== "" && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(s)) throw value('a member\'s name, or "auto"', v);
      c.routes.exitNode = s || null;
    },
    exit_dns: (v, c) => void (c.routes.exitDns = bool(v)),
  },
  paths: {
    latency_weight: (v, c) => void (c.paths.weights.latency = weight(v)),
    loss_weight: (v, c) => void (c.paths.weights.loss = weight(v)),
    goodput_weight: (v, c) => void (c.paths.weights.goodput = weight(v)),
    decision_log: (v, c) => void (c.paths.decisionLog = str(v) || null),
    decision_log_max: (v, c) => void (c.paths.decisionLogMaxBytes = parseSize(v)),
  },
};

function bool(v: unknown): boolean {
  if (typeof v !== "boolean") throw type("true or false", v);
  return v;
}

/** "192.168.50.0/24" or "fd00:1::/64": the network address (host bits zero) and its length. */
export function parsePrefix(v: unknown): { family: 4 | 6; address: string; prefix: number } {
  const s = str(v);
  const want = 'a prefix like "192.168.50.0/24" or "fd00:1::/64"';
  const [addr, len, ...rest] = s.split("/");
  const b = addr.includes(":") ? parseIpv6(addr) : parseIpv4(addr);
  const prefix = Number(len);
  if (!b || rest.length || len === undefined || !/^\d+$/.test(len) || prefix > b.length * 8) throw value(want, v);
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    if (b[i] & (0xff >> keep)) throw value(`${want} with no bits set past the prefix length`, v);
  }
  return { family: b.length === 4 ? 4 : 6, address: addr, prefix };
}

function weight(v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw type("a number from 0 to 1", v);
  if (v < 0 || v > 1) throw value("a number from 0 to 1", v);
  return v;
}

export function parseSize(v: unknown): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 4096) return v;
  const m = typeof v === "string" ? /^(\d+)\s*(kb|mb|gb)$/i.exec(v) : null;
  if (!m || Number(m[1]) === 0) throw (typeof v === "string" || typeof v === "number" ? value : type)('a size like "10mb" or a number of bytes ≥ 4096', v);
  return Number(m[1]) * { kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[m[2].toLowerCase() as "kb"];
}

export function defaults(file: string | null): Config {
  return {
    file,
    node: { name: nodeName(), stateDir: "/var/lib/trellis", idleTimeoutMs: 60_000, logLevel: "info" },
    network: { seeds: [], allow: [], ca: null },
    tun: { name: "trellis0", mtu: "auto" },
    relay: { enabled: false, seed: true, listen: { host: "0.0.0.0", port: 7443 }, maxPeers: 64, bandwidthBps: 0, tlsCert: null, tlsKey: null, networks: null },
    api: { listen: { host: "127.0.0.1", port: 7080 } },
    paths: { weights: { latency: 0.5, loss: 0.3, goodput: 0.2 }, decisionLog: null, decisionLogMaxBytes: 10 * 1024 * 1024 },
    routes: { advertise: [], snat: true, accept: false, check: null, exit: false, exitNode: null, exitDns: false },
  };
}
