// The fast channel's way out: Bun's own UDP socket under werift's node:dgram one, and a send queue that
// takes the datagrams of one task (a batch from the TUN) and hands them to the kernel at its end: each
// run of equal-size datagrams to one address in one sendmsg with UDP_SEGMENT (./udpgso.ts), the rest in
// sendMany calls, in order. A refusal of GSO stays with its socket; a full buffer drops what it cannot
// take, as a NIC queue would (counted in txFailed).
import type { Socket } from "node:dgram";
import type { Log } from "../log.ts";
import { GSO_MAX_BYTES, GSO_MAX_SEGMENTS, GsoSocket } from "./udpgso.ts";
import { headerBytes, sameHeader } from "./gro.ts";

/** Datagrams per sendMany at most. */
const SEND_BATCH = 64;

/** Bun's own UDP socket under a node:dgram socket: its send skips node:dgram's per-call DNS and queue. */
export interface NativeUdp {
  send(data: Uint8Array, port: number, address: string): boolean;
  /** [data, port, address, data, port, address, …]; returns how many it sent. */
  sendMany(packets: (Uint8Array | number | string)[]): number;
  readonly fd?: number;
  readonly closed?: boolean;
}
const natives = new WeakMap<Socket, NativeUdp | null>();
/** Per native socket: its GSO sender (undefined where GSO is not available); a refusal stays with it. */
const gsos = new WeakMap<NativeUdp, GsoSocket | null>();
export function gsoFor(n: NativeUdp): GsoSocket | undefined {
  let g = gsos.get(n);
  if (g === undefined) gsos.set(n, (g = GsoSocket.open(n.fd) ?? null));
  return g ?? undefined;
}
export function nativeUdp(s: Socket): NativeUdp | null {
  let n = natives.get(s);
  if (n !== undefined) return n;
  const state = Object.getOwnPropertySymbols(s).map((k) => (s as unknown as Record<symbol, { handle?: { socket?: NativeUdp } }>)[k]).find((v) => v?.handle?.socket);
  n = typeof state?.handle?.socket?.send === "function" ? state.handle.socket : null;
  natives.set(s, n);
  return n;
}

/** Native sockets we turned UDP GRO on for (their reads may hold several of our datagrams). */
export const groSockets = new WeakSet<NativeUdp>();

/** Whether frames are all one size but the last, which may be shorter (a run GSO can send as it lies). */
export function evenRun(fs: readonly Uint8Array[]): boolean {
  const size = fs[0].length;
  for (let i = 1; i < fs.length - 1; i++) if (fs[i].length !== size) return false;
  return fs[fs.length - 1].length <= size;
}

/** The counters a send queue keeps (the fast channel's stats). */
export interface SendStats {
  txFailed: number;
  txGsoSends: number;
  txGsoDatagrams: number;
}

export class SendQueue {
  private qData: Uint8Array[] = [];
  private qPort: number[] = [];
  private qHost: string[] = [];
  private queueSocket?: NativeUdp;

  constructor(
    private readonly stats: SendStats,
    private readonly log: Log,
    private readonly label: string,
  ) {}

  /** Queue `b` for `host`:`port` on `native`; it goes at the end of the current task (or sooner, in batches). */
  push(native: NativeUdp, b: Uint8Array, port: number, host: string): void {
    if (this.qData.length === 0) queueMicrotask(this.flush);
    else if (native !== this.queueSocket) this.flush();
    this.queueSocket = native;
    this.qData.push(b);
    this.qPort.push(port);
    this.qHost.push(host);
    if (this.qData.length >= SEND_BATCH) this.flush();
  }

  /** How many datagrams of `size` bytes one sendRun on `native` takes at most (0: no GSO there). */
  runLength(native: NativeUdp, size: number): number {
    const gso = gsoFor(native);
    return gso && !gso.refused ? Math.min(GSO_MAX_SEGMENTS, Math.floor(GSO_MAX_BYTES / size)) : 0;
  }

  /**
   * Send `count` datagrams that lie back to back in buf[0..length), each `size` bytes but the last, in
   * one sendmsg (after what is queued), before this returns: as they lie, with no view per datagram
   * (at most runLength of them). Refused, they go through the queue one by one, as flush would.
   */
  sendRun(native: NativeUdp, buf: Uint8Array, length: number, count: number, size: number, port: number, host: string): void {
    this.flush();
    const r = count >= 2 ? gsoFor(native)?.sendRun(buf, length, count, size, host, port) : undefined;
    if (r && "sent" in r) {
      this.stats.txGsoSends++;
      this.stats.txGsoDatagrams += r.sent;
      this.stats.txFailed += count - r.sent;
      return;
    }
    for (let at = 0; at < length; at += size) this.push(native, buf.subarray(at, Math.min(at + size, length)), port, host);
    this.flush();
  }

  /**
   * Send the queue: each run of equal-size frames to one address (the last may be shorter) in one
   * sendmsg with UDP_SEGMENT; single datagrams and probes in sendMany calls, in order.
   */
  readonly flush = (): void => {
    const data = this.qData, ports = this.qPort, hosts = this.qHost, socket = this.queueSocket;
    const count = data.length;
    if (count === 0 || !socket) return;
    this.qData = [];
    this.qPort = [];
    this.qHost = [];
    // A socket closed since (its fd number may be another socket's by now): nothing goes.
    if (socket.closed) return void (this.stats.txFailed += count);
    const gso = gsoFor(socket);
    let plain: (Uint8Array | number | string)[] = [];
    // sendMany stops at the first datagram the kernel refuses (throwing when it is the first): one too
    // big for the path (EMSGSIZE: an MTU probe larger than it) is dropped alone and the rest go on; a
    // full buffer drops the rest, as a NIC queue would.
    const many = (): void => {
      let at = 0;
      while (at < plain.length) {
        let sent = 0, code: string | undefined;
        try {
          sent = socket.sendMany(at === 0 ? plain : plain.slice(at));
        } catch (e) {
          code = (e as NodeJS.ErrnoException).code;
        }
        at += sent * 3;
        if (at >= plain.length) break;
        if (sent > 0) continue; // stopped at a refusal: try it alone first, to learn why
        this.stats.txFailed++;
        at += 3;
        if (code !== "EMSGSIZE") {
          this.stats.txFailed += (plain.length - at) / 3;
          break;
        }
      }
      plain = [];
    };
    for (let i = 0; i < count; ) {
      const first = data[i], size = first.length, host = hosts[i], port = ports[i];
      let j = i + 1;
      if (gso && !gso.refused && headerBytes(first) > 0) {
        let bytes = size;
        while (j < count && j - i < GSO_MAX_SEGMENTS && ports[j] === port && hosts[j] === host && sameHeader(first, data[j])) {
          const len = data[j].length;
          if (len > size || bytes + len > GSO_MAX_BYTES) break;
          bytes += len;
          j++;
          if (len < size) break; // a shorter one ends the run
        }
      }
      if (j - i >= 2) {
        many();
        const r = gso!.send(data, i, j, size, host, port);
        if ("sent" in r) {
          this.stats.txFailed += j - i - r.sent;
          this.stats.txGsoSends++;
          this.stats.txGsoDatagrams += r.sent;
        } else {
          // Refused: the same datagrams one by one; if they all go, GSO was the problem here.
          for (let k = i; k < j; k++) plain.push(data[k], ports[k], hosts[k]);
          const before = this.stats.txFailed;
          many();
          if (this.stats.txFailed === before && !gso!.refused) {
            gso!.refuse(r.refused);
            this.log("info", `${this.label}: UDP GSO refused on this socket (${r.refused}): datagrams go one by one`);
          } else if (gso!.refused) this.log("info", `${this.label}: UDP GSO refused on this socket (${gso!.refused}): datagrams go one by one`);
        }
      } else plain.push(first, port, host);
      i = j;
    }
    many();
  };
}
