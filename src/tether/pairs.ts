// Which remote addresses the fast channel takes datagrams from: those of ICE candidate pairs that passed a check.
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
