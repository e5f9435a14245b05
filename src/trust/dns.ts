// A tiny DNS responder (RFC 1035): A and AAAA for NAME.NETWORK, answered on the node's overlay address.
// It changes nothing on the host; point a resolver at it (e.g. systemd-resolved's per-link DNS) to use it.
// Anything that is not a well-formed single-question query gets no answer. On an exit node (DnsForward)
// any other name, asked by the overlay address of a node that may use the exit, goes to the host's own resolver and its answer back
// (a member with `[routes] exit_dns` points its resolver here: its queries and their answers travel
// through the tunnel, and the internet sees the exit's resolver ask).
const TYPE_A = 1, TYPE_AAAA = 28, CLASS_IN = 1;
const RCODE_NXDOMAIN = 3, RCODE_NOTIMP = 4;
const TTL = 60;

/** Addresses for a name and type ("a" → IPv4 as 4 bytes, "aaaa" → IPv6 as 16 bytes); undefined = no such name. */
export type Lookup = (name: string, type: "a" | "aaaa") => Uint8Array[] | undefined;

/** The response to `q`, or null to stay silent. */
export function answerQuery(q: Uint8Array, lookup: Lookup, onMiss?: (name: string) => void): Uint8Array | null {
  if (q.length < 12 || q.length > 512) return null;
  const dv = new DataView(q.buffer, q.byteOffset, q.length);
  const flags = dv.getUint16(2);
  if (flags & 0x8000 || dv.getUint16(4) !== 1) return null; // a response, or not exactly one question
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    if (off >= q.length) return null;
    const len = q[off++];
    if (len === 0) break;
    if (len > 63 || off + len > q.length) return null; // no compression in questions
    labels.push(Buffer.from(q.subarray(off, off + len)).toString("latin1").toLowerCase());
    off += len;
  }
  if (off + 4 > q.length) return null;
  const qtype = dv.getUint16(off), qclass = dv.getUint16(off + 2);
  const question = q.subarray(12, off + 4);
  const opcode = (flags >> 11) & 15;
  const reply = (rcode: number, answers: Uint8Array[], type: number) => {
    const rrs = answers.map((a) => {
      const rr = new Uint8Array(12 + a.length);
      const r = new DataView(rr.buffer);
      r.setUint16(0, 0xc00c); // pointer to the question's name
      r.setUint16(2, type);
      r.setUint16(4, CLASS_IN);
      r.setUint32(6, TTL);
      r.setUint16(10, a.length);
      rr.set(a, 12);
      return rr;
    });
    const out = new Uint8Array(12 + question.length + rrs.reduce((n, r) => n + r.length, 0));
    const o = new DataView(out.buffer);
    o.setUint16(0, dv.getUint16(0));
    o.setUint16(2, 0x8000 | (opcode << 11) | 0x0400 | (flags & 0x0100) | rcode); // QR, AA, RD copied
    o.setUint16(4, 1);
    o.setUint16(6, rrs.length);
    out.set(question, 12);
    let p = 12 + question.length;
    for (const r of rrs) {
      out.set(r, p);
      p += r.length;
    }
    return out;
  };
  if (opcode !== 0 || qclass !== CLASS_IN) return reply(RCODE_NOTIMP, [], qtype);
  const name = labels.join(".");
  const want = qtype === TYPE_A ? "a" : qtype === TYPE_AAAA ? "aaaa" : null;
  const found = lookup(name, want ?? "a");
  if (found === undefined) {
    onMiss?.(name);
    return reply(RCODE_NXDOMAIN, [], qtype);
  }
  if (!want) return reply(0, [], qtype); // the name exists, but not with that type
  return reply(0, lookup(name, want) ?? [], qtype);
}

import { connect, createServer, type Server, type Socket } from "node:net";

/** Forwarding names that are not ours (an exit node's, for its members). */
export interface DnsForward {
  /** Whether `name` belongs to one of our networks (NAME.NETWORK): answered here, never forwarded. */
  ours(name: string): boolean;
  /** Whether a query from `addr` may be forwarded (the overlay address of a node that may use this exit). */
  from(addr: string): boolean;
  /** The resolver to ask (an IP address: the host's first nameserver), or undefined. */
  upstream(): string | undefined;
}

/** Queries waiting for the upstream resolver: bounded, each forgotten after FORWARD_WAIT_MS. */
const FORWARD_MAX = 512;
const FORWARD_WAIT_MS = 5000;

/** Relays queries to the upstream resolver under fresh IDs and hands each answer back to its asker. */
export class Forwarder {
  private readonly pending = new Map<number, { id: number; port: number; addr: string; at: number; upstream: string }>();
  private socks = new Map<4 | 6, Promise<Bun.udp.Socket<"buffer">>>();
  forwarded = 0;
  dropped = 0;

  constructor(
    private readonly reply: (data: Uint8Array, port: number, addr: string) => void,
    private readonly upstreamPort = 53,
  ) {}

  private sock(family: 4 | 6): Promise<Bun.udp.Socket<"buffer">> {
    let s = this.socks.get(family);
    if (!s) {
      s = Bun.udpSocket({ hostname: family === 4 ? "0.0.0.0" : "::", port: 0, socket: { data: (_s, data, rport, raddr) => this.answer(data, rport, raddr) } });
      this.socks.set(family, s);
    }
    return s;
  }

  /** Forward query `q` from addr:port to `upstream`; false when it is dropped (too many waiting). */
  send(q: Uint8Array, port: number, addr: string, upstream: string): boolean {
    const now = Date.now();
    for (const [k, p] of this.pending) if (now - p.at > FORWARD_WAIT_MS) this.pending.delete(k);
    if (this.pending.size >= FORWARD_MAX || q.length < 12) return (this.dropped++, false);
    let key: number;
    do key = (Math.random() * 0x10000) | 0;
    while (this.pending.has(key));
    const out = Uint8Array.from(q);
    this.pending.set(key, { id: (q[0] << 8) | q[1], port, addr, at: now, upstream });
    out[0] = key >> 8;
    out[1] = key & 255;
    void this.sock(upstream.includes(":") ? 6 : 4).then((s) => s.send(out, this.upstreamPort, upstream)).catch(() => this.pending.delete(key));
    this.forwarded++;
    return true;
  }

  private answer(data: Uint8Array, rport: number, raddr: string): void {
    if (data.length < 12 || rport !== this.upstreamPort) return;
    const key = (data[0] << 8) | data[1];
    const p = this.pending.get(key);
    if (!p || p.upstream !== raddr.replace(/^::ffff:/, "")) return;
    this.pending.delete(key);
    const out = Uint8Array.from(data);
    out[0] = p.id >> 8;
    out[1] = p.id & 255;
    try {
      this.reply(out, p.port, p.addr);
    } catch {}
  }

  stop(): void {
    for (const s of this.socks.values()) void s.then((x) => x.close()).catch(() => {});
    this.socks.clear();
    this.pending.clear();
  }
}

/** DNS over TCP on an exit (a truncated answer is asked again over TCP): at most this many connections, each closed after this long idle. */
const TCP_MAX_CONNS = 64;
const TCP_IDLE_MS = 10_000;
const frame = (m: Uint8Array) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]);

/**
 * DNS over TCP for overlay askers (RFC 7766 framing): our names answered here, and once a query is
 * for another name the connection is relayed to the upstream resolver as it is (every later query
 * too, so answers never interleave).
 */
function dnsTcp(host: string, port: number, lookup: Lookup, forward: DnsForward, upstreamPort: number): Promise<Server> {
  const server = createServer((c) => {
    c.on("error", () => {});
    if (!forward.from(c.remoteAddress ?? "")) return void c.destroy();
    c.setTimeout(TCP_IDLE_MS, () => c.destroy());
    let buf = Buffer.alloc(0);
    let up: Socket | undefined;
    c.on("close", () => up?.destroy());
    c.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > 2 * 65537) return void c.destroy();
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = new Uint8Array(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + msg.length);
        if (!up) {
          let missed: string | undefined;
          const r = answerQuery(msg, lookup, (n) => (missed = n));
          if (missed === undefined || forward.ours(missed)) {
            if (r) c.write(frame(r));
            continue;
          }
          const target = forward.upstream();
          if (!target) return void c.destroy();
          up = connect(upstreamPort, target);
          up.on("data", (d) => c.write(d));
          up.on("error", () => c.destroy());
          up.on("close", () => c.end());
        }
        up.write(frame(msg));
      }
    });
  });
  server.maxConnections = TCP_MAX_CONNS;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

/**
 * Serve DNS on UDP host:53 (or `port`; 0: one the kernel picks, reported as `port`). A name not known
 * yet goes to `resolve` (the node asks its relays, bounded) and is answered after it settles,
 * NXDOMAIN if still unknown. With `forward` (an exit node) other names go to the host's resolver, over
 * UDP and over TCP on the same port.
 */
export async function startDns(host: string, lookup: Lookup, port = 53, resolve?: (name: string) => Promise<void>, forward?: DnsForward, upstreamPort = 53): Promise<{ port: number; stop(): void }> {
  let fwd: Forwarder | undefined;
  const sock = await Bun.udpSocket({
    hostname: host,
    port,
    socket: {
      data(s, data, rport, raddr) {
        try {
          let missed: string | undefined;
          const r = answerQuery(data, lookup, (name) => (missed = name));
          const upstream = missed !== undefined && forward && !forward.ours(missed) && forward.from(raddr) ? forward.upstream() : undefined;
          if (upstream) {
            fwd ??= new Forwarder((d, p, a) => s.send(d, p, a), upstreamPort);
            fwd.send(data, rport, raddr, upstream);
            return;
          }
          if (missed === undefined || !resolve) {
            if (r) s.send(r, rport, raddr);
            return;
          }
          const q = Uint8Array.from(data);
          void resolve(missed).then(() => {
            try {
              const again = answerQuery(q, lookup);
              if (again) s.send(again, rport, raddr);
            } catch {}
          });
        } catch {}
      },
    },
  });
  // An exit also answers over TCP (on the same port); where that port is taken, UDP alone serves.
  const tcp = forward ? await dnsTcp(host, sock.port, lookup, forward, upstreamPort).catch(() => undefined) : undefined;
  return {
    port: sock.port,
    stop: () => {
      fwd?.stop();
      tcp?.close();
      sock.close();
    },
  };
}
