// Who may speak DTLS to a link's UDP sockets, and what may still come in the clear once DTLS is up.
//
// werift hands every datagram that is not STUN to the link's DTLS session, whatever address sent it,
// and a connected session takes a plaintext (epoch 0) ClientHello as the start of a new handshake: it
// drops its keys, and the link's data channels go silent while the link still looks open. One datagram
// from anyone who knew a link's port did that. Here a DTLS record passes only from the remote address of
// one of ICE's candidate pairs (./pairs.ts: signed candidates, or addresses whose checks carried the ICE
// password), and once DTLS is connected, plaintext records are dropped: a finished handshake sends
// nothing in the clear that werift still acts on (the peer's repeated last flight keeps its encrypted
// Finished, which passes). Datagrams that are not DTLS (STUN, our fast channel's) are not looked at.
import { PairRemotes, type CheckList } from "./pairs.ts";

/** RFC 7983's demultiplexing range for DTLS records (first byte: the content type). */
const DTLS_FIRST = 20, DTLS_LAST = 63;
/** A DTLS record's header: type, version (2), epoch (2), sequence number (6), length (2). */
const RECORD_HEADER = 13;

interface Transport {
  onData: (data: Buffer, addr: [string, number]) => void;
}

/** What the guard needs from werift's ICE connection (`pc.iceTransports[0].connection`). */
export interface GuardedConnection extends CheckList {
  protocols: { transport?: Transport }[];
}

export interface DtlsGuardStats {
  /** DTLS datagrams from an address that is no candidate pair's: dropped. */
  strangers: number;
  /** Plaintext records after the handshake (a datagram's epoch-0 records): dropped. */
  plaintext: number;
}

/**
 * A datagram's records of epoch 1 or later: `data` itself when all are, a copy of them when some are
 * not, undefined when none are (or the records do not parse: werift would drop them too).
 */
export function encryptedRecords(data: Buffer): Buffer | undefined {
  let at = 0, clear = 0;
  const kept: Buffer[] = [];
  while (at < data.length) {
    if (data.length - at < RECORD_HEADER) return undefined;
    const end = at + RECORD_HEADER + data.readUInt16BE(at + 11);
    if (end > data.length) return undefined;
    if (data.readUInt16BE(at + 3) === 0) clear++;
    else kept.push(data.subarray(at, end));
    at = end;
  }
  if (clear === 0) return data;
  return kept.length ? Buffer.concat(kept) : undefined;
}

/**
 * Put the guard in front of werift's DTLS on each of `conn`'s sockets (once each; call when ICE has
 * gathered, before the peer can have our answer or offer). `connected`: whether DTLS finished its handshake.
 */
export class DtlsGuard {
  readonly stats: DtlsGuardStats = { strangers: 0, plaintext: 0 };
  private readonly remotes: PairRemotes;
  private readonly hooked = new WeakSet<object>();

  /** `note`: told of the first datagram of each kind dropped (the rest are counted). */
  constructor(private readonly conn: GuardedConnection, private readonly connected: () => boolean, private readonly note: (what: string) => void = () => {}) {
    this.remotes = new PairRemotes(conn);
  }

  hook(): void {
    for (const p of this.conn.protocols) {
      const t = p.transport;
      if (!t || this.hooked.has(t)) continue;
      this.hooked.add(t);
      const inner = t.onData;
      t.onData = (data, addr) => {
        const k = data[0];
        if (k < DTLS_FIRST || k > DTLS_LAST) return inner(data, addr);
        if (!this.remotes.has(addr)) {
          if (this.stats.strangers++ === 0) this.note(`DTLS from ${addr[0]}:${addr[1]}, no candidate pair's address: dropped (more are counted)`);
          return;
        }
        if (!this.connected()) return inner(data, addr);
        const kept = encryptedRecords(data);
        if (kept !== data && this.stats.plaintext++ === 0) this.note(`plaintext DTLS from ${addr[0]}:${addr[1]} after the handshake: dropped (more are counted)`);
        if (kept) inner(kept, addr);
      };
    }
  }
}
