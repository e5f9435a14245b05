// The fast channel: sealed packets as raw UDP datagrams on the 5-tuple ICE already proved, beside
// werift's DTLS and data channels (no second hole punch; ICE consent checks keep running).
//
// What rides it: session data (0xC4), sealed end to end, so a forged one dies at the session's AEAD;
// and forward frames (0xC5), whose headers (source, destination, trace) and inner type a relay acts
// on, so every one is authenticated per link (counter and GMAC tag, replay window: ./linkauth.ts,
// batches in one call into ffi/gcm.c). Datagrams are taken
// only from remote addresses of candidate pairs that passed an ICE check (the two sides may nominate
// different pairs). Everything else (hop frames, handshakes, signals) stays on the data channels. The
// channel's own probes carry an HMAC under a key the two sides agree over the DTLS control channel, so
// nobody on or off the path can fake the channel's liveness or its MTU; an answer counts only for a
// probe this side sent in the last second and only once, so a replayed answer changes nothing. What the
// link above may take as life (`alive`): verified frames, answers that count, and peer probes with a
// sequence number above any seen (a replayed probe is answered but proves nothing). Never bare data.
//
// Keys: each side sends 16 random bytes (its token) over the DTLS control channel. Probe key =
// SHA-256("trellis fast channel v1" ‖ lower token ‖ higher token); frame key for A → B =
// SHA-256("trellis fast channel frames v1" ‖ A's token ‖ B's token). GCM nonce: 0^4 ‖ counter (u64 BE).
//
// Probe datagram (0xCA):
//   0xCA | kind u8 (1 probe, 2 answer) | seq u32 | size u16 | zero padding … | HMAC-SHA256[0..16]
//   An answer echoes the probe's seq and total size: "a datagram this big got through".
//
// Liveness: a probe every 150 ms while packets flow; down once 3 probes over at least 450 ms go unanswered,
// up again at the next answer; while down the link sends over its data channel (the tether's fallback).
// Idle (nothing sent for ACTIVE_FOR_MS) and up: no probes, no timer (the router's idle probe exchange keeps
// the pair warm and its life known, ../route/linkhealth.ts: one probe of this channel's each way, probeIdle); the first frame sent probes at once and at the
// active rate (a pair that died idle is found down ~450 ms later). Down, it probes at the active rate.
// MTU: a round of one probe per candidate size every second while packets flow or no size is known yet
// (then none idle: a relay holds a thousand idle links); the largest answered size is
// the MTU. Datagrams carry DF (./sockopt.ts), so no kernel on the way cuts them and
// the probes find the path's real size. The MTU rises at once and falls only when the current size goes
// unanswered two rounds in a row (one lost probe is not a smaller path). Larger frames take the data
// channel, whose SCTP fragments and reassembles them.
import { createHash, createHmac, randomBytes } from "node:crypto";
import type { Socket } from "node:dgram";
import { dontFragment, udpGro } from "./sockopt.ts";
import { evenRun, groSockets, gsoFor, nativeUdp, SendQueue } from "./udpsend.ts";
import { segmentSize } from "./gro.ts";
import { udpSocketStat, type UdpSocketStat } from "./udpstat.ts";
import type { Log } from "../log.ts";
import { TYPE_DATA } from "../session/wire.ts";
import { framed, LINK_AUTH_BYTES, TYPE_FORWARD, type Framing } from "../route/frame.ts";
import type { SocketGuardStats } from "./sockguard.ts";
import { LinkAuth } from "./linkauth.ts";
import { SucceededPairs } from "./pairs.ts";

export const TYPE_FAST_PROBE = 0xca;
/** Bytes of each side's half of the probe key (sent on the control channel after TYPE_FAST_PROBE). */
export const TOKEN_BYTES = 16;

/**
 * Whether a datagram belongs to the fast channel (not to werift: STUN, DTLS): session data and forward
 * frames. Which frames are sent here is decided once, by the router (route/frame.ts channelFor).
 */
export function ridesFast(b: Uint8Array): boolean {
  return b[0] === TYPE_DATA || b[0] === TYPE_FORWARD;
}
const KIND_PROBE = 1, KIND_ANSWER = 2;
const MAC_BYTES = 16;
const PROBE_HEADER = 8;
const SMALL_PROBE = PROBE_HEADER + MAC_BYTES;
/** What per-link authentication adds to a frame that is not a session data packet: counter u64 and GCM tag. */
export const FRAME_AUTH_BYTES = LINK_AUTH_BYTES;
/** An answer counts only for a probe sent this recently (ms), and only once. */
const ANSWER_WITHIN_MS = 1_000;

/** UDP payload sizes tried, largest first: IPv4 and IPv6 over 1500, common tunnels and the 1280 floor. */
export const MTU_CANDIDATES = [1472, 1452, 1400, 1352, 1280, 1232, 1200] as const;
const PROBE_ACTIVE_MS = 150, ROUND_ACTIVE_MS = 1_000, ROUND_IDLE_MS = 1_800_000, ACTIVE_FOR_MS = 5_000;
/** The channels' clock and timer (a test sets its own). */
export const fastClock = { now: () => performance.now(), after: (f: () => void, ms: number): unknown => setTimeout(f, ms), cancel: (t: unknown) => clearTimeout(t as number) };
const DOWN_AFTER_PROBES = 3, DOWN_AFTER_MS = 450;
/** Bytes the kernel may hold for the socket: bursts of sealed datagrams outrun the event loop. */
const SOCKET_BUFFER = 4 << 20;
/**
 * The receive side's (TRELLIS_UDP_RCVBUF to try another): when this node is the slower end of a TCP
 * flow through the tunnel, this socket's queue is the standing one (nothing in front of it drops early;
 * the kernel doubles the figure, so 4 MB holds up to ~8 MB, 40+ ms at 1 Gbit/s). Before UDP GRO, 1 MB
 * measured 20-28 ms under load against 69-135 ms; with GRO the runs were too noisy to tell: unchanged.
 */
const RECV_BUFFER = Number(process.env.TRELLIS_UDP_RCVBUF) || SOCKET_BUFFER;

/** What the fast channel needs from werift's ICE connection (`pc.iceTransports[0].connection`). */
export interface IceConnection {
  nominated?: { protocol: { transport?: UdpTransport }; remoteAddr: [string, number] };
  canSendApplicationData(): boolean;
  protocols: { transport?: UdpTransport }[];
  checkList: { state: number; remoteAddr: [string, number] }[];
}
interface UdpTransport {
  socket?: Socket;
  onData: (data: Buffer, addr: [string, number]) => void;
}

export type FastState = "keying" | "down" | "up";
export interface FastStats {
  state: FastState;
  mtu: number;
  txPackets: number;
  /** Datagrams the socket would not take (its buffer full, or too big for the path): dropped. */
  txFailed: number;
  rxPackets: number;
  rxRejected: number;
  /** Probe answers refused: for no probe of ours in the last second, or answered already (a replay). */
  rxStaleAnswers: number;
  fallbacks: number;
  /** Frames refused, which the link sent on its data channel, by why (not up, over the MTU with its tag, …). */
  txRefused: { down: number; mtu: number; unkeyed: number; socket: number };
  /** sendmsg calls that carried several datagrams with UDP_SEGMENT, and the datagrams in them. */
  txGsoSends: number;
  txGsoDatagrams: number;
  /** Reads that held several datagrams (UDP GRO), and the datagrams in them. */
  rxGroReads: number;
  rxGroDatagrams: number;
  /** Segmentation offload on this link's socket: "gso" in use, or why not ("gso refused: EIO", …). */
  offload: string[];
  /** The nominated pair's socket as the kernel sees it (./udpstat.ts). */
  socket?: UdpSocketStat;
  /** Datagrams the link's socket guard dropped (./sockguard.ts; set by the link). */
  guard?: SocketGuardStats;
}

export class FastChannel {
  state: FastState = "keying";
  /** The largest datagram known to get through (0 until a probe round says). */
  mtu = 0;
  readonly stats = { txPackets: 0, txFailed: 0, rxPackets: 0, rxRejected: 0, rxStaleAnswers: 0, fallbacks: 0, txRefused: { down: 0, mtu: 0, unkeyed: 0, socket: 0 }, txGsoSends: 0, txGsoDatagrams: 0, rxGroReads: 0, rxGroDatagrams: 0 };
  /** Our half of the probe key; sent to the peer over the control channel. */
  readonly token = randomBytes(TOKEN_BYTES);
  private key?: Buffer;
  /** Tags and checks the frames that are not session data (./linkauth.ts). */
  private auth?: LinkAuth;
  /** Probes we sent and have not seen answered: seq → (size, sent at, who waits for the answer: probeIdle). */
  private outstanding = new Map<number, { size: number; at: number; answered?: (rttMs: number) => void }>();
  private seq = 0;
  private unanswered = 0;
  private firstUnansweredAt = 0;
  private lastActive = -Infinity;
  private lastRound = -Infinity;
  private roundSeqs = new Map<number, number>();
  private roundBest = 0;
  private currentMissed = 0;
  private timer?: unknown;
  private idle = false; // no probe timer (idle and up): the next frame sent restarts the active rate
  private readonly peers: SucceededPairs;
  private hooked = new WeakSet<object>();
  private closed = false;
  private readonly queue: SendQueue;
  /** When a probe or an answer last went (fastClock): an idle link's UDP kept warm from this side (../tether/fallback.ts). */
  private lastProbeSent = -Infinity;
  /** Told of each datagram that authenticated (head comment); then the highest probe seq heard from the peer. */
  alive?: () => void;
  private peerSeq = -1;

  constructor(
    private readonly conn: IceConnection,
    private readonly deliver: (b: Uint8Array) => void,
    private readonly log: Log,
    private readonly label: string,
    /** Session data that arrived in one GRO read, handed on together (else each goes to deliver). */
    private readonly deliverMany?: (bs: Uint8Array[]) => void,
  ) {
    this.queue = new SendQueue(this.stats, log, label);
    this.peers = new SucceededPairs(conn);
  }

  /** The peer's token arrived over the control channel: derive the probe key and start probing. */
  keyed(peerToken: Uint8Array): void {
    if (this.closed || this.key || peerToken.length !== TOKEN_BYTES) return; // once per link: one probe timer
    const [lo, hi] = Buffer.compare(this.token, peerToken) < 0 ? [this.token, peerToken] : [peerToken, this.token];
    this.key = createHash("sha256").update("trellis fast channel v1").update(lo).update(hi).digest();
    const frameKey = (from: Uint8Array, to: Uint8Array) => createHash("sha256").update("trellis fast channel frames v1").update(from).update(to).digest();
    this.auth = new LinkAuth(frameKey(this.token, peerToken), frameKey(peerToken, this.token));
    this.hook();
    if (this.state === "keying") this.state = "down";
    this.tick();
  }

  /** Send a frame over the fast channel; false when it is down or the frame is larger than its MTU. */
  send(b: Uint8Array): boolean {
    this.sending();
    const refused = this.stats.txRefused;
    if (this.state !== "up") return refused.down++, false;
    if (b[0] !== TYPE_DATA) {
      if (b.length + FRAME_AUTH_BYTES > this.mtu) return refused.mtu++, false;
      if (!this.auth) return refused.unkeyed++, false;
      b = this.auth.tag(b);
    } else if (b.length > this.mtu) return refused.mtu++, false;
    if (!this.raw(b)) return refused.socket++, false;
    this.stats.txPackets++;
    return true;
  }

  /**
   * Send a batch of frames for this link (sealed session data, forward frames) at once: runs of equal
   * size go to the kernel in one sendmsg each (UDP GSO) where the socket takes it. Returns how many went;
   * each one the channel does not take (down, larger than its MTU) goes to `rejected`, for the caller to
   * send another way, in order. With `framing` every frame is a forward frame sent as framing.head ‖
   * frame[framing.skip..] (a relay re-framing what it forwards; ./linkauth.ts), tagged as one batch.
   */
  sendBatch(frames: readonly Uint8Array[], rejected?: (b: Uint8Array) => void, framing?: Framing): number {
    if (framing) return this.sendFramed(frames, framing, rejected);
    // Once per batch, what send() looks up per frame: activity, state, the nominated pair, its socket.
    this.sending();
    const n = this.conn.nominated;
    const socket = n?.protocol.transport?.socket;
    const native = n && socket && this.state === "up" && this.conn.canSendApplicationData() ? nativeUdp(socket) : null;
    let sent = 0;
    for (const b of frames) {
      if (!native || b[0] !== TYPE_DATA) {
        if (this.send(b)) sent++;
        else rejected?.(b);
      } else if (b.length > this.mtu) {
        this.stats.txRefused.mtu++;
        rejected?.(b);
      } else {
        this.queue.push(native, b, n!.remoteAddr[1], n!.remoteAddr[0]);
        this.stats.txPackets++;
        sent++;
      }
    }
    this.queue.flush();
    return sent;
  }

  private sendFramed(frames: readonly Uint8Array[], framing: Framing, rejected?: (b: Uint8Array) => void): number {
    this.sending();
    const refused = this.stats.txRefused;
    const n = this.conn.nominated;
    const socket = n?.protocol.transport?.socket;
    const up = this.state === "up" && !!this.auth && !!n && !!socket && this.conn.canSendApplicationData();
    const fit: Uint8Array[] = [];
    const room = this.mtu - framing.head.length + framing.skip - FRAME_AUTH_BYTES;
    for (const f of frames) {
      if (up && f.length <= room) fit.push(f);
      else {
        if (!up) this.state !== "up" ? refused.down++ : !this.auth ? refused.unkeyed++ : refused.socket++;
        else refused.mtu++;
        rejected?.(framed(f, framing));
      }
    }
    if (fit.length === 0) return 0;
    const native = nativeUdp(socket!);
    const [host, port] = n!.remoteAddr;
    // Frames of one size (the last may be shorter) leave as they lie in the tagged buffer, one GSO send
    // per run (SendQueue.sendRun); else views into it (through Bun's socket sent before we return).
    const size = framing.head.length + fit[0].length - framing.skip + FRAME_AUTH_BYTES;
    const per = native ? this.queue.runLength(native, size) : 0;
    if (per >= 2 && fit.length >= 2 && evenRun(fit))
      for (let from = 0; from < fit.length; from += per) {
        const run = fit.length <= per ? fit : fit.slice(from, from + per);
        const { buf, length } = this.auth!.tagRun(run, framing);
        this.queue.sendRun(native!, buf, length, run.length, size, port, host);
      }
    else
      for (const v of this.auth!.tagAll(fit, framing, !!native)) {
        if (native) this.queue.push(native, v, port, host);
        else if (!this.raw(v)) refused.socket++; // werift's socket: counted, no way to take it back now
      }
    this.stats.txPackets += fit.length;
    this.queue.flush();
    return fit.length;
  }

  /** Frames are being sent: after a quiet spell, probe at the active rate from now on (the idle timer may be seconds off). */
  private sending(): void {
    if (this.idle && this.key && !this.closed) {
      this.idle = false;
      fastClock.cancel(this.timer);
      this.timer = fastClock.after(() => this.tick(), 0);
    }
    this.lastActive = fastClock.now();
  }

  /**
   * One probe now, for the link above's idle liveness check (../route/linkhealth.ts): one datagram each
   * way, under the probe key, instead of a probe frame and its answer through DTLS and SCTP (each with its
   * own SACK). Only while up and idle (active, the channel probes on its own); the answer counts as any
   * (alive(), once, within ANSWER_WITHIN_MS) and calls `answered` with the round trip. False when not sent.
   */
  probeIdle(answered: (rttMs: number) => void): boolean {
    if (this.state !== "up" || !this.idle || this.closed || !this.key) return false;
    this.probe(KIND_PROBE, this.seq++ >>> 0, SMALL_PROBE, SMALL_PROBE, answered);
    return true;
  }

  /** Milliseconds since a probe or an answer of this channel last went on the pair. */
  get sinceProbeSent(): number {
    return fastClock.now() - this.lastProbeSent;
  }

  /** Send what is queued now rather than at the end of the task. */
  flushNow(): void {
    this.queue.flush();
  }

  /** Offload features in use on the nominated pair's socket, for status. */
  get offload(): string[] {
    const socket = this.conn.nominated?.protocol.transport?.socket;
    const native = socket && nativeUdp(socket);
    if (!native) return [];
    const g = gsoFor(native);
    return [g ? (g.refused ? `gso refused: ${g.refused}` : "gso") : "gso unavailable", groSockets.has(native) ? "gro" : "gro unavailable"];
  }

  /** The nominated pair's socket: its receive buffer, queue and drops (FastStats.socket); undefined where unknown. */
  get socket(): FastStats["socket"] {
    const socket = this.conn.nominated?.protocol.transport?.socket;
    return socket && udpSocketStat(socket);
  }

  close(): void {
    this.closed = true;
    fastClock.cancel(this.timer);
  }

  /**
   * Send a datagram on the nominated pair: through Bun's own socket it joins the send queue
   * (./udpsend.ts); without one, through werift's socket at once.
   */
  private raw(b: Uint8Array): boolean {
    const n = this.conn.nominated;
    const socket = n?.protocol.transport?.socket;
    if (!n || !socket || !this.conn.canSendApplicationData()) return false;
    const native = nativeUdp(socket);
    if (native) {
      this.queue.push(native, b, n.remoteAddr[1], n.remoteAddr[0]);
      return true;
    }
    try {
      socket.send(b, n.remoteAddr[1], n.remoteAddr[0]);
      return true;
    } catch {
      return false;
    }
  }

  /** Take our datagram types off each of the connection's UDP sockets before werift parses them. */
  private hook(): void {
    for (const p of this.conn.protocols) {
      const t = p.transport;
      if (!t || !t.socket || this.hooked.has(t)) continue;
      this.hooked.add(t);
      try {
        t.socket.setRecvBufferSize(RECV_BUFFER);
        t.socket.setSendBufferSize(SOCKET_BUFFER);
      } catch (e) {
        this.log("debug", `${this.label}: socket buffers stay at the default: ${(e as Error).message}`);
      }
      const native = nativeUdp(t.socket);
      const fd = native?.fd;
      if (fd === undefined || !dontFragment(fd)) this.log("debug", `${this.label}: cannot set don't-fragment on the link's socket: the kernel may fragment large datagrams`);
      if (native && fd !== undefined && !groSockets.has(native) && process.env.TRELLIS_UDP_GRO !== "0" && udpGro(fd)) groSockets.add(native);
      const inner = t.onData;
      t.onData = (data, addr) => {
        const k = data[0];
        if (k !== TYPE_FAST_PROBE && !ridesFast(data)) return inner(data, addr);
        if (this.closed) return;
        if (!this.peers.has(addr)) {
          this.stats.rxRejected++;
          return;
        }
        const size = native && groSockets.has(native) ? segmentSize(data) : 0;
        if (size === 0) return this.receive(data);
        this.stats.rxGroReads++;
        // A run of session data (one GSO send: every datagram shares the first's type and receiver
        // index) goes on as one batch: the layers above do their per-link work once for it.
        if (data[0] === TYPE_DATA && this.deliverMany) {
          const batch: Uint8Array[] = [];
          for (let at = 0; at < data.length; at += size) {
            const b = data.subarray(at, Math.min(at + size, data.length));
            this.stats.rxGroDatagrams++;
            if (b[0] === TYPE_DATA) batch.push(b);
            else this.receive(b);
          }
          this.stats.rxPackets += batch.length;
          return this.deliverMany(batch);
        }
        // A run of forward frames (each one: a GSO run shares its first bytes): checked in one call,
        // handed on together.
        if (data[0] === TYPE_FORWARD && this.deliverMany && this.auth && allForward(data, size)) {
          const frames: Uint8Array[] = [];
          this.stats.rxGroDatagrams += Math.ceil(data.length / size);
          this.stats.rxRejected += this.auth.openRun(data, size, (f) => frames.push(f));
          this.stats.rxPackets += frames.length;
          if (frames.length) this.alive?.();
          return this.deliverMany(frames);
        }
        for (let at = 0; at < data.length; at += size) {
          this.stats.rxGroDatagrams++;
          this.receive(data.subarray(at, Math.min(at + size, data.length)));
        }
      };
    }
  }

  /** One datagram of ours from the peer. */
  private receive(data: Buffer): void {
    const k = data[0];
    if (k === TYPE_FAST_PROBE) return this.onProbe(data);
    if (k === TYPE_DATA) {
      this.stats.rxPackets++;
      return this.deliver(data);
    }
    // Anything else a relay or the router acts on before any end-to-end check: per-link authenticated.
    const frame = this.auth?.open(data);
    if (!frame) {
      this.stats.rxRejected++;
      return;
    }
    this.stats.rxPackets++;
    this.alive?.();
    this.deliver(frame);
  }

  /** A probe `length` bytes long (an answer is small and names the size of the probe it answers). */
  private probe(kind: number, seq: number, length: number, size = length, answered?: (rttMs: number) => void): void {
    if (!this.key) return;
    const b = Buffer.alloc(length);
    b[0] = TYPE_FAST_PROBE;
    b[1] = kind;
    b.writeUInt32BE(seq, 2);
    b.writeUInt16BE(size, 6);
    createHmac("sha256", this.key).update(b.subarray(0, length - MAC_BYTES)).digest().copy(b, length - MAC_BYTES, 0, MAC_BYTES);
    const now = (this.lastProbeSent = fastClock.now());
    if (kind === KIND_PROBE) {
      if (this.outstanding.size >= 64) for (const [k, v] of this.outstanding) if (now - v.at > ANSWER_WITHIN_MS) this.outstanding.delete(k);
      this.outstanding.set(seq, { size, at: now, answered });
    }
    this.raw(b);
  }

  private onProbe(b: Buffer): void {
    if (!this.key || b.length < SMALL_PROBE) return;
    const mac = createHmac("sha256", this.key).update(b.subarray(0, b.length - MAC_BYTES)).digest();
    if (!mac.subarray(0, MAC_BYTES).equals(b.subarray(b.length - MAC_BYTES))) {
      this.stats.rxRejected++;
      return;
    }
    const seq = b.readUInt32BE(2), size = b.readUInt16BE(6);
    if (b[1] === KIND_PROBE) {
      // Newer than any heard: life. A replayed one is answered (an answer counts for nobody twice), no more.
      if (seq > this.peerSeq) {
        this.peerSeq = seq;
        this.alive?.();
      }
      if (size === b.length) this.probe(KIND_ANSWER, seq, SMALL_PROBE, size);
      return;
    }
    if (b[1] !== KIND_ANSWER) return;
    // Only an answer to a probe we sent lately, and only once: a replayed answer proves nothing.
    const sent = this.outstanding.get(seq);
    if (!sent || sent.size !== size || fastClock.now() - sent.at > ANSWER_WITHIN_MS) {
      this.stats.rxStaleAnswers++;
      return;
    }
    this.outstanding.delete(seq);
    this.unanswered = 0;
    this.alive?.();
    sent.answered?.(fastClock.now() - sent.at);
    if (this.state !== "up") {
      this.state = "up";
      this.log("info", `${this.label}: fast channel up`);
    }
    if (this.roundSeqs.get(seq) === size) {
      this.roundBest = Math.max(this.roundBest, size);
      if (size > this.mtu) {
        if (this.mtu) this.log("info", `${this.label}: fast channel mtu ${this.mtu} → ${size}`);
        this.mtu = size;
      }
    }
  }

  private tick(): void {
    this.timer = undefined;
    if (this.closed) return;
    const now = fastClock.now();
    const active = now - this.lastActive < ACTIVE_FOR_MS;
    if (!active && this.state === "up" && this.mtu > 0) return void (this.idle = true); // until a frame is sent (sending())
    // Liveness.
    if (this.unanswered === 0) this.firstUnansweredAt = now;
    this.unanswered++;
    if (this.state === "up" && this.unanswered > DOWN_AFTER_PROBES && now - this.firstUnansweredAt >= DOWN_AFTER_MS) {
      this.state = "down";
      this.stats.fallbacks++;
      this.log("info", `${this.label}: fast channel down (${this.unanswered - 1} probes unanswered over ${Math.round(now - this.firstUnansweredAt)} ms): packets take the data channel`);
    }
    this.probe(KIND_PROBE, this.seq++ >>> 0, SMALL_PROBE);
    // MTU rounds.
    if (now - this.lastRound >= (active || !this.mtu ? ROUND_ACTIVE_MS : ROUND_IDLE_MS)) this.round(now);
    this.idle = false;
    this.timer = fastClock.after(() => this.tick(), PROBE_ACTIVE_MS);
  }

  private round(now: number): void {
    // Judge the last round: the current MTU unanswered twice in a row means the path got smaller.
    if (this.lastRound > -Infinity && this.state === "up") {
      const answered = this.roundBest >= this.mtu;
      this.currentMissed = answered ? 0 : this.currentMissed + 1;
      if (this.currentMissed >= 2) {
        this.log("info", `${this.label}: fast channel mtu ${this.mtu} → ${this.roundBest} (larger probes unanswered twice)`);
        this.mtu = this.roundBest;
        this.currentMissed = 0;
      }
    }
    this.lastRound = now;
    this.roundBest = 0;
    this.roundSeqs.clear();
    for (const size of MTU_CANDIDATES) {
      const seq = this.seq++ >>> 0;
      this.roundSeqs.set(seq, size);
      this.probe(KIND_PROBE, seq, size);
    }
  }
}

/** Whether every datagram of a coalesced read (`size` bytes each) is a forward frame. */
function allForward(data: Uint8Array, size: number): boolean {
  for (let at = 0; at < data.length; at += size) if (data[at] !== TYPE_FORWARD) return false;
  return true;
}
