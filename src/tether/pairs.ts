// Which remote addresses a link takes datagrams from: the fast channel, those of ICE candidate pairs that
// passed a check (SucceededPairs); DTLS, those of any candidate pair (PairRemotes).
//
// The two sides may nominate different pairs, so any succeeded pair's remote address is the peer's. The
// set is rebuilt from ICE's check list at most once a second, when an address not in it shows up.

/** werift's CandidatePairState.SUCCEEDED. */
const PAIR_SUCCEEDED = 3;

export interface CheckList {
  checkList: { state: number; remoteAddr: [string, number] }[];
}

export class SucceededPairs {
  private allowed = new Set<string>();
  private allowedAt = -Infinity;
  private lastHost = "";
  private lastPort = -1;

  constructor(private readonly conn: CheckList) {}

  /** Whether `addr` is the remote end of a candidate pair that passed an ICE check. */
  has(addr: [string, number]): boolean {
    // The common case, without building a key: the address the last accepted datagram came from.
    if (addr[1] === this.lastPort && addr[0] === this.lastHost) return true;
    const key = `${addr[0]}|${addr[1]}`;
    if (this.allowed.has(key)) {
      [this.lastHost, this.lastPort] = addr;
      return true;
    }
    const now = performance.now();
    if (now - this.allowedAt < 1_000) return false;
    this.allowedAt = now;
    this.allowed = new Set(this.conn.checkList.filter((p) => p.state === PAIR_SUCCEEDED).map((p) => `${p.remoteAddr[0]}|${p.remoteAddr[1]}`));
    if (!this.allowed.has(key)) return false;
    [this.lastHost, this.lastPort] = addr;
    return true;
  }
}

/**
 * Which remote addresses may speak DTLS to a link (./sockguard.ts): those of any ICE candidate pair,
 * whatever its state: a pair's remote end is a candidate the peer signed into its offer or answer, or
 * the source of a check that carried our ICE password (werift pairs with any check's source; the guard
 * lets only those through). The set is rebuilt when the check list changes size.
 */
export class PairRemotes {
  private allowed = new Set<string>();
  private builtFrom?: CheckList["checkList"];
  private builtFor = -1;
  private lastHost = "";
  private lastPort = -1;

  constructor(private readonly conn: CheckList) {}

  has(addr: [string, number]): boolean {
    const list = this.conn.checkList;
    if (list !== this.builtFrom || list.length !== this.builtFor) {
      this.builtFrom = list;
      this.builtFor = list.length;
      this.allowed = new Set(list.map((p) => `${p.remoteAddr[0]}|${p.remoteAddr[1]}`));
      this.lastPort = -1;
    }
    if (addr[1] === this.lastPort && addr[0] === this.lastHost) return true;
    if (!this.allowed.has(`${addr[0]}|${addr[1]}`)) return false;
    [this.lastHost, this.lastPort] = addr;
    return true;
  }
}
