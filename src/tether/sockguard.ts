// What werift may take from a link's UDP sockets: STUN checks that carry our ICE password, DTLS from
// the peer's addresses, and nothing of DTLS in the clear once it is up.
//
// werift answers every STUN Binding Request without checking its MESSAGE-INTEGRITY: a stranger's made
// it pair with the stranger's address (a peer-reflexive candidate), answer it, and act on its role
// claims. It hands every datagram that is not STUN to the link's DTLS session whatever address sent it,
// and a connected session takes a plaintext (epoch 0) ClientHello as the start of a new handshake: it
// drops its keys, and the link's data channels go silent while the link still looks open. One datagram
// from anyone who knew a link's port did that. Here a Binding Request passes only with our ICE username
// and a valid MESSAGE-INTEGRITY under our ICE password (the peer learnt both from our signed offer or
// answer); a DTLS record only from the remote address of one of ICE's candidate pairs (./pairs.ts: now
// signed candidates, or sources of checks that passed here); once DTLS is connected, plaintext records
// are dropped (a finished handshake sends nothing in the clear that werift still acts on; the peer's
// repeated last flight keeps its encrypted Finished, which passes). Other datagrams (STUN answers,
// which werift matches to its own requests; our fast channel's) are not looked at.
import { parseMessage } from "werift";
import { PairRemotes, type CheckList } from "./pairs.ts";

/** RFC 7983's demultiplexing ranges (first byte): STUN, and DTLS records (the content type). */
const STUN_LAST = 3, DTLS_FIRST = 20, DTLS_LAST = 63;
/** A DTLS record's header: type, version (2), epoch (2), sequence number (6), length (2). */
const RECORD_HEADER = 13;
/** A STUN message's type bits for its class (C1, C0): both clear for a request. */
const STUN_CLASS_BITS = 0x0110;

interface Transport {
  onData: (data: Buffer, addr: [string, number]) => void;
}

/** What the guard needs from werift's ICE connection (`pc.iceTransports[0].connection`). */
export interface GuardedConnection extends CheckList {
  protocols: { transport?: Transport }[];
  localUsername: string;
  localPassword: string;
}

export interface SocketGuardStats {
  /** STUN requests without our ICE username and password: dropped (not answered, nothing paired). */
  stun: number;
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

/** Whether a STUN request is one of the peer's checks: our username first, our password's integrity. */
export function peerCheck(data: Buffer, localUsername: string, localPassword: string): boolean {
  const m = parseMessage(data, Buffer.from(localPassword, "utf8"));
  const user = m?.getAttributeValue("USERNAME");
  return typeof user === "string" && user.startsWith(`${localUsername}:`);
}

/**
 * The guard in front of werift on each of `conn`'s sockets (hook() once ICE has gathered, before the
 * peer can have our offer or answer; again for sockets made later). `connected`: whether DTLS finished.
 */
export class SocketGuard {
  readonly stats: SocketGuardStats = { stun: 0, strangers: 0, plaintext: 0 };
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
        if (k <= STUN_LAST) {
          if (data.length < 2 || (data.readUInt16BE(0) & STUN_CLASS_BITS) !== 0) return inner(data, addr);
          if (peerCheck(data, this.conn.localUsername, this.conn.localPassword)) return inner(data, addr);
          if (this.stats.stun++ === 0) this.note(`STUN request from ${addr[0]}:${addr[1]} without our ICE credentials: dropped (more are counted)`);
          return;
        }
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
