// netcheck's measurements: STUN over UDP to every seed from one socket (can UDP leave and come back,
// what address the NAT maps us to for each destination), padded STUN with don't-fragment (the path MTU),
// and HTTP(S) to each seed (reachable, latency, TLS). No judgement here: ./findings.ts reads the results.
import { lookup } from "node:dns/promises";
import { networkInterfaces } from "node:os";
import { dontFragment } from "../tether/sockopt.ts";
import { bindingRequest, mappedAddress, responseTxid } from "./stun.ts";

/** IP packet sizes tried for the path MTU: Ethernet, PPPoE, common tunnels, IPv6's minimum, IPv4's. */
export const MTU_LADDER = [1500, 1492, 1480, 1472, 1460, 1440, 1420, 1400, 1380, 1360, 1300, 1280, 1200, 1024, 576];
const UDP_TRIES = 3;
const UDP_WAIT_MS = 500;
const MTU_WAIT_MS = 1000;
const HTTP_TIMEOUT_MS = 4000;

export interface SeedProbe {
  url: string;
  host: string;
  /** The seed's address, resolved (null when the name does not resolve). */
  address: string | null;
  /** STUN shares the seed's port number, over UDP. */
  port: number;
  tls: boolean;
  /** The STUN answer: round trip and the address the seed saw us from; null when none came. */
  udp: { rtt_ms: number; mapped: { address: string; port: number } } | null;
  /** GET /v1/health: the first request's time (connect and TLS included), a second one's, or the error. */
  http: { status: number; first_ms: number; rtt_ms: number } | { error: string };
  /** The largest probe (IP packet size) answered with don't-fragment set; null when none was. */
  mtu: number | null;
  /** The local interface's MTU bound: probes above it could not be sent. */
  mtu_sent_max: number | null;
}

export interface Probe {
  /** The UDP port the STUN probes left from, and this host's own addresses (to tell a NAT from none). */
  local: { port: number; addresses: string[] };
  seeds: SeedProbe[];
}

function parseSeedUrl(url: string): { host: string; port: number; tls: boolean } {
  const u = new URL(url);
  const tls = u.protocol === "https:";
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || (tls ? 443 : 80)), tls };
}

type Waiter = { txid: Uint8Array; resolve(b: Uint8Array): void };

/** A UDP socket that hands STUN answers to whoever waits for their transaction id. */
async function stunSocket(df: boolean) {
  const waiters = new Set<Waiter>();
  const sock = await Bun.udpSocket({
    socket: {
      data(_s, data) {
        const txid = responseTxid(data);
        if (!txid) return;
        for (const w of waiters)
          if (Buffer.compare(Buffer.from(w.txid), Buffer.from(txid)) === 0) {
            waiters.delete(w);
            w.resolve(new Uint8Array(data));
          }
      },
      error() {},
    },
  });
  if (df) dontFragment((sock as unknown as { fd: number }).fd);
  return {
    port: sock.port,
    /** Send `message` to address:port; resolves with the answer, or null after `ms`. False when the kernel refused to send it. */
    ask(message: Uint8Array, txid: Uint8Array, address: string, port: number, ms: number): Promise<Uint8Array | null> | false {
      try {
        if (!sock.send(message, port, address)) return false;
      } catch {
        return false; // EMSGSIZE: larger than the interface (or a known path MTU) with don't-fragment set
      }
      return new Promise((resolve) => {
        const w: Waiter = { txid, resolve: (b) => (clearTimeout(t), resolve(b)) };
        const t = setTimeout(() => (waiters.delete(w), resolve(null)), ms);
        waiters.add(w);
      });
    },
    close: () => sock.close(),
  };
}

async function resolve(host: string): Promise<string | null> {
  try {
    return (await lookup(host)).address;
  } catch {
    return null;
  }
}

async function http(url: string): Promise<SeedProbe["http"]> {
  const get = async () => {
    const t0 = performance.now();
    const r = await fetch(new URL("/v1/health", url), { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    await r.arrayBuffer();
    return { status: r.status, ms: performance.now() - t0 };
  };
  try {
    const a = await get();
    const b = await get();
    return { status: b.status, first_ms: round(a.ms), rtt_ms: round(b.ms) };
  } catch (e) {
    const err = e as Error & { code?: string };
    return { error: err.name === "TimeoutError" ? `no answer within ${HTTP_TIMEOUT_MS / 1000} s` : err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message };
  }
}

const round = (x: number) => Math.round(x * 100) / 100;

/** Probe every seed: UDP and the NAT's mapping (one socket for all), path MTU, HTTP(S). */
export async function probe(seeds: string[]): Promise<Probe> {
  const udp = await stunSocket(false);
  const mtuSock = await stunSocket(true);
  try {
    const results = await Promise.all(
      seeds.map(async (url): Promise<SeedProbe> => {
        const { host, port, tls } = parseSeedUrl(url);
        const address = await resolve(host);
        const base = { url, host, address, port, tls };
        const httpP = http(url);
        if (!address) return { ...base, udp: null, http: await httpP, mtu: null, mtu_sent_max: null };
        // UDP and the mapping: a Binding Request, retried.
        let answer: SeedProbe["udp"] = null;
        for (let i = 0; i < UDP_TRIES && !answer; i++) {
          const { message, txid } = bindingRequest();
          const t0 = performance.now();
          const r = await (udp.ask(message, txid, address, port, UDP_WAIT_MS) || null);
          if (r) answer = { rtt_ms: round(performance.now() - t0), mapped: mappedAddress(r) };
        }
        // Path MTU: every size of the ladder at once (twice, against loss), don't-fragment set.
        const overhead = address.includes(":") ? 48 : 28;
        let mtu: number | null = null, sentMax: number | null = null;
        if (answer) {
          const asks = MTU_LADDER.flatMap((size) =>
            [0, 1].map(async () => {
              const { message, txid } = bindingRequest(size - overhead);
              const p = mtuSock.ask(message, txid, address, port, MTU_WAIT_MS);
              if (p === false) return;
              sentMax = Math.max(sentMax ?? 0, size);
              if (await p) mtu = Math.max(mtu ?? 0, size);
            }),
          );
          await Promise.all(asks);
        }
        return { ...base, udp: answer, http: await httpP, mtu, mtu_sent_max: sentMax };
      }),
    );
    const addresses = Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
    return { local: { port: udp.port, addresses }, seeds: results };
  } finally {
    udp.close();
    mtuSock.close();
  }
}
