// A tiny DNS responder (RFC 1035): A and AAAA for NAME.NETWORK, answered on the node's overlay address.
// It changes nothing on the host; point a resolver at it (e.g. systemd-resolved's per-link DNS) to use it.
// Anything that is not a well-formed single-question query gets no answer.
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

/**
 * Serve DNS on UDP host:53 (or `port`; 0: one the kernel picks, reported as `port`). A name not known
 * yet goes to `resolve` (the node asks its relays, bounded) and is answered after it settles,
 * NXDOMAIN if still unknown.
 */
export async function startDns(host: string, lookup: Lookup, port = 53, resolve?: (name: string) => Promise<void>): Promise<{ port: number; stop(): void }> {
  const sock = await Bun.udpSocket({
    hostname: host,
    port,
    socket: {
      data(s, data, rport, raddr) {
        try {
          let missed: string | undefined;
          const r = answerQuery(data, lookup, (name) => (missed = name));
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
  return { port: sock.port, stop: () => sock.close() };
}
