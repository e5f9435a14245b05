// A link to one adjacent node over a werift RTCPeerConnection. This is the only module importing werift.
//
// Channels are pre-negotiated (no in-band DCEP): id 0 "ctl" reliable and ordered, for handshakes and
// control; id 1 "pkt" unordered with maxRetransmits 0, for sealed packets. ICE is gathered in full before
// the SDP is sent (one signed message each way). Backpressure: sendPacket drops when more than a few
// messages wait in the SCTP queue, because werift's throughput falls steeply as the queue grows.
// Once open, sealed packets prefer the fast channel (raw datagrams on the ICE pair, ./fast.ts) and take
// the "pkt" data channel while it is down or for frames larger than its MTU: the fallback is per packet.
import dgram from "node:dgram";
import { networkInterfaces } from "node:os";
import { CandidatePair, classes, methods, RTCCertificate, RTCPeerConnection, StunProtocol, type RTCDataChannel } from "werift";
import type { NodeId } from "../identity/identity.ts";
import { dtlsCertificate } from "./dtlscert.ts";
import { SocketGuard, type GuardedConnection, type SocketGuardStats } from "./sockguard.ts";
import { framed, type Framing } from "../route/frame.ts";
import { FastChannel, TOKEN_BYTES, TYPE_FAST_PROBE, type FastStats, type IceConnection } from "./fast.ts";
import { slimEvents, trimWerift } from "./weriftdiet.ts";
import { ConsentPacer, type ConsentConnection } from "./consent.ts";
import { setupStarted } from "./burstgc.ts";

import type { Log } from "../log.ts";

/** Bytes allowed to wait on the packet channel before sendPacket drops (a few messages). */
export const PKT_QUEUE_LIMIT = 16 * 1024;
export const GATHER_TIMEOUT_MS = 5_000;
export const CONNECT_TIMEOUT_MS = 15_000;
/** Seconds between SCTP heartbeats on an idle association (werift's default: 30). */
const SCTP_HEARTBEAT_S = 300;

let guarded = false;
let guardLog: Log = () => {};
/**
 * An ICMP "unreachable" for an ICE check makes Bun's UDP socket emit 'error', and werift's sockets have
 * no error listener: one ICMP would kill the process. werift binds `createSocket` by a named import,
 * which a patched `dgram.createSocket` does not reach in Bun, so the guard sits on the class every
 * node:dgram socket shares: an 'error' nobody listens for is logged (to the latest caller's log: the
 * guard is once per process, its nodes may come and go), not thrown.
 */
export function guardUdpSockets(log: Log): void {
  guardLog = log;
  if (guarded) return;
  guarded = true;
  const proto = dgram.Socket.prototype as unknown as { emit: (this: dgram.Socket, event: string | symbol, ...args: unknown[]) => boolean };
  const emit = proto.emit;
  proto.emit = function (event, ...args) {
    if (event === "error" && this.listenerCount("error") === 0) {
      const e = args[0] as NodeJS.ErrnoException | undefined;
      guardLog("debug", `udp socket error ignored: ${e?.code ?? e?.message ?? e}`);
      return true;
    }
    return emit.call(this, event, ...args);
  };
}

let padded = false;
/**
 * Seeds answer a STUN Binding Request only when it is at least as long as the answer (no reflection
 * gain, src/seed/stun.ts); werift sends a bare 20-byte one to STUN servers. Pad those with a SOFTWARE
 * attribute (comprehension-optional: any STUN server ignores it) to 52 bytes.
 */
export function padStunRequests(): void {
  if (padded) return;
  padded = true;
  const proto = StunProtocol.prototype as unknown as { request: (req: StunMessage, ...rest: unknown[]) => Promise<unknown> };
  const request = proto.request;
  proto.request = function (this: unknown, req: StunMessage, ...rest: unknown[]) {
    if (!rest[1] && req.messageMethod === methods.BINDING && req.messageClass === classes.REQUEST && !req.rawAttributes?.length && !req.attributesKeys?.length)
      req.appendRawAttribute(0x8022, Buffer.from("trellis".padEnd(28, " ")));
    return request.call(this, req, ...rest);
  };
}
let certificate: RTCCertificate | undefined;
/** The certificate every peer connection of this process presents (./dtlscert.ts), not werift's own. */
function sharedCertificate(): RTCCertificate {
  const c = dtlsCertificate();
  return (certificate ??= new RTCCertificate(c.keyPem, c.certPem, c.signatureHash));
}

/** Transaction ids a candidate pair remembers to spot retransmitted checks (werift keeps every one). */
const PAIR_REQUEST_IDS = 16;
let bounded = false;
/**
 * werift's candidate pair remembers the transaction id of every STUN request it receives, to tell a
 * retransmission from a new check, and never forgets one: the peer's consent checks (one every ~5 s)
 * grow each open link by ~17,000 ids (~1.5 MB) a day. A retransmission follows its original within
 * seconds, so the pair keeps only the latest few.
 */
export function boundPairRequestIds(): void {
  if (bounded) return;
  bounded = true;
  const proto = CandidatePair.prototype as unknown as { noteIncomingRequest: (this: { requestTransactionIds: Set<string> }, id: string) => boolean };
  const note = proto.noteIncomingRequest;
  proto.noteIncomingRequest = function (id) {
    const ids = this.requestTransactionIds;
    if (ids.size >= PAIR_REQUEST_IDS && !ids.has(id)) ids.delete(ids.values().next().value!);
    return note.call(this, id);
  };
}

interface StunMessage {
  messageMethod: number;
  messageClass: number;
  rawAttributes?: unknown[];
  attributesKeys?: string[];
  appendRawAttribute(type: number, value: Buffer): unknown;
}

/**
 * Addresses to gather host candidates on: each interface's, as werift picks them (not loopback, not
 * link-local, not on tun/tap/veth-named interfaces), less those `avoid` names; then `extra`.
 */
export function iceHostAddresses(extra: string[] = [], avoid?: (host: string) => boolean): string[] {
  const v4: string[] = [], v6: string[] = [];
  const nics = networkInterfaces();
  for (const nic of Object.keys(nics).sort()) {
    if (/^(ipsec|tun|utun|tap|vmnet|veth)/.test(nic)) continue;
    for (const a of nics[nic] ?? []) {
      if (a.internal || a.address.startsWith("169.254.") || a.address.toLowerCase().startsWith("fe80:") || avoid?.(a.address)) continue;
      (a.family === "IPv4" ? v4 : v6).push(a.address);
    }
  }
  return [...new Set([...extra, ...v4, ...v6])];
}

let warnedNoHosts = -Infinity;
/**
 * `hosts`, saying so (at most once a minute) when there are none: ICE then offers no candidate and the
 * link fails at once. Seen on a relay just started, whose networkInterfaces() listed no eth0 for seconds.
 */
function hostsOrWarn(hosts: string[], log: Log): string[] {
  const now = performance.now();
  if (hosts.length === 0 && now - warnedNoHosts > 60_000) {
    warnedNoHosts = now;
    log("warn", `no address of this host to offer to peers (interfaces seen: ${Object.keys(networkInterfaces()).join(", ") || "none"}): links fail until one appears; retried`);
  }
  return hosts;
}

export interface Link {
  readonly peer: NodeId;
  readonly state: "connecting" | "open" | "closed";
  sendPacket(b: Uint8Array): boolean;
  sendProbe(b: Uint8Array): boolean;
  /** Optional: an idle link's liveness probe on the fast channel (route/ports.ts RouterLink.probeIdle). */
  probeIdle?(answered: (rttMs: number) => void): boolean;
  /** Optional: milliseconds since the fast channel last sent a probe or an answer (UDP sent outside sendPacket/sendProbe). */
  readonly sinceFastProbe?: number;
  /**
   * Send a batch of packets for this peer at once (sealed datagrams from one TUN read): where the fast
   * channel carries them, runs of equal size leave in one sendmsg (UDP GSO). Returns how many went.
   * Optional: a link without it takes them one by one through sendPacket. With `framing` each frame
   * sent is framing.head ‖ frame[framing.skip..] (route/frame.ts Framing).
   */
  sendPackets?(batch: readonly Uint8Array[], framing?: Framing): number;
  sendControl(b: Uint8Array): void;
  onPacket(cb: (b: Uint8Array) => void): void;
  /**
   * Optional: packets that arrived together (one UDP GRO read: session data of one session), for a
   * listener that also listens with onPacket. While any batch listener is set a batch goes to them
   * alone; otherwise its packets go one by one to the onPacket listeners.
   */
  onPackets?(cb: (bs: Uint8Array[]) => void): void;
  onControl(cb: (b: Uint8Array) => void): void;
  /**
   * Optional: something that authenticated arrived (a data-channel message under DTLS, a fast-channel
   * frame under its link tag, a fresh fast-channel probe or answer), not bare session data from the
   * fast channel, which anyone who can spoof the pair's addresses can send: the link's life (./fallback.ts).
   */
  onAlive?(cb: () => void): void;
  onOpen(cb: () => void): void;
  onClose(cb: (reason: string) => void): void;
  close(reason?: string): void;
  readonly stats: { txPackets: number; rxPackets: number; txDropped: number };
  /** The largest frame the fast channel takes now; undefined while it is down (frames of any size go). */
  readonly fastMtu: number | undefined;
  /** The far end's underlay address and ICE candidate type ("198.18.1.2:40000 srflx"), once connected. */
  readonly remote?: string;
  /** The fast channel's state and counters, once the link is open. */
  readonly fastStats: FastStats | undefined;
}

/** How long close() waits for werift's own close before it cuts the connection's event subscriptions. */
const RELEASE_AFTER_MS = 2_000;

/** The werift objects of a peer connection that carry events (its own, ICE's, DTLS's, SCTP's, channels'). */
function werifts(pc: RTCPeerConnection, ...channels: (RTCDataChannel | undefined)[]): object[] {
  const p = pc as unknown as { dtlsTransports: object[]; iceTransports: { connection?: { protocols?: object[] } }[]; sctpTransport?: { sctp?: object } };
  const out: object[] = [pc, ...p.dtlsTransports, ...p.iceTransports];
  for (const t of p.iceTransports) if (t.connection) out.push(t.connection, ...(t.connection.protocols ?? []));
  if (p.sctpTransport) out.push(p.sctpTransport, ...(p.sctpTransport.sctp ? [p.sctpTransport.sctp] : []));
  for (const c of channels) if (c) out.push(c);
  return out;
}

/**
 * After close: drop every subscriber of the connection's werift events. werift keeps an ICE connection
 * closed in the middle of set-up reachable from its own callbacks long after close() (seen on a relay:
 * 13–86 of them for 100 members after a burst of set-ups, each holding its whole peer connection:
 * ICE, DTLS, SCTP, channels and this link); with the subscribers cut, nothing holds them.
 */
function releaseEvents(parts: object[]): void {
  for (const o of parts)
    for (const v of Object.values(o)) if (v && typeof (v as { allUnsubscribe?: unknown }).allUnsubscribe === "function") (v as { allUnsubscribe(): void }).allUnsubscribe();
}

/**
 * ICE's candidate-pair filter, made outside the link: werift's ICE connection keeps it in its options,
 * and a closure made in the link's constructor would keep the link (and its whole peer connection)
 * alive as long as werift keeps that connection, which it does past close() for links closed mid-set-up.
 */
function pairFilter(avoid: (host: string) => boolean): (pair: { localCandidate: { host: string }; remoteCandidate: { host: string } }) => boolean {
  return (pair) => !avoid(pair.localCandidate.host) && !avoid(pair.remoteCandidate.host);
}

export class WebrtcLink implements Link {
  state: "connecting" | "open" | "closed" = "connecting";
  readonly stats = { txPackets: 0, rxPackets: 0, txDropped: 0 };
  private readonly pc: RTCPeerConnection;
  private pkt?: RTCDataChannel;
  private ctl?: RTCDataChannel;
  private packetCbs: ((b: Uint8Array) => void)[] = [];
  private batchCbs: ((bs: Uint8Array[]) => void)[] = [];
  private controlCbs: ((b: Uint8Array) => void)[] = [];
  private aliveCbs: (() => void)[] = [];
  private openCbs: (() => void)[] = [];
  private closeCbs: ((reason: string) => void)[] = [];
  private timer: ReturnType<typeof setTimeout>;
  /** Messages that arrived before anyone subscribed (the far side may open first and send at once). */
  private early: { control: boolean; data: Uint8Array }[] = [];
  private fast?: FastChannel;
  /** ICE consent, kept by the link's authenticated traffic once open (./consent.ts). */
  private consent?: ConsentPacer;
  private guard?: SocketGuard;

  /** `hostAddresses`: extra local addresses to offer as candidates (loopback in tests). */
  /**
   * `avoid`: addresses ICE must not use on either side: the overlay's own (a link through our TUN would
   * tunnel the overlay inside itself, over a relay).
   */
  constructor(readonly peer: NodeId, iceServers: string[], private readonly log: Log, hostAddresses?: string[], avoid?: (host: string) => boolean) {
    padStunRequests();
    boundPairRequestIds();
    trimWerift();
    setupStarted(); // collections while set-ups run keep their survivors from spreading (./burstgc.ts)
    this.pc = new RTCPeerConnection({
      iceServers: iceServers.map((urls) => ({ urls })),
      certificates: [sharedCertificate()],
      // The host addresses are ours to pick (werift's own pick, less what ICE must avoid): werift opens
      // a UDP socket per address for every peer connection, and would open one on the overlay's own
      // address too (our TUN), which no pair may use.
      iceUseIpv4: false,
      iceUseIpv6: false,
      iceAdditionalHostAddresses: hostsOrWarn(iceHostAddresses(hostAddresses, avoid), log),
      iceFilterCandidatePair: avoid ? pairFilter(avoid) : undefined,
    });
    this.pc.connectionStateChange.subscribe((s) => {
      if (s === "failed" || s === "closed" || s === "disconnected") this.close(`peer connection ${s}`);
    });
    this.timer = setTimeout(() => this.state === "connecting" && this.close("timed out connecting"), CONNECT_TIMEOUT_MS);
  }

  private channels(): void {
    this.ctl = this.pc.createDataChannel("ctl", { negotiated: true, id: 0, ordered: true });
    this.pkt = this.pc.createDataChannel("pkt", { negotiated: true, id: 1, ordered: false, maxRetransmits: 0 });
    for (const [dc, cbs] of [[this.ctl, this.controlCbs], [this.pkt, this.packetCbs]] as const) {
      dc.onMessage.subscribe((m) => {
        if (typeof m === "string" || this.state === "closed") return;
        this.alive();
        if (dc === this.ctl && m[0] === TYPE_FAST_PROBE && m.length === 1 + TOKEN_BYTES) return this.fast?.keyed(m.subarray(1));
        if (dc === this.pkt) this.stats.rxPackets++;
        if (cbs.length === 0) {
          if (this.early.length < 64) this.early.push({ control: dc === this.ctl, data: m });
          return;
        }
        for (const cb of cbs) cb(m);
      });
      dc.stateChanged.subscribe((s) => {
        if (s === "open") this.maybeOpen();
        else if (s === "closed") this.close("data channel closed");
      });
    }
  }

  private maybeOpen(): void {
    if (this.state !== "connecting" || this.ctl?.readyState !== "open" || this.pkt?.readyState !== "open") return;
    this.state = "open";
    clearTimeout(this.timer);
    this.guardSockets(); // any socket made since the offer or answer
    this.startFast();
    slimEvents([this.pc]); // what werift keeps per open connection, trimmed (./weriftdiet.ts)
    for (const cb of this.openCbs) cb();
  }

  /** Offer the far side our half of the fast channel's probe key; it starts once theirs arrives. */
  private startFast(): void {
    const conn = (this.pc as unknown as { iceTransports: { connection: IceConnection }[] }).iceTransports[0]?.connection;
    if (!conn) return;
    this.fast = new FastChannel(conn, (b) => {
      this.stats.rxPackets++;
      for (const cb of this.packetCbs) cb(b);
    }, this.log, `link ${this.peer}`, (bs) => {
      this.stats.rxPackets += bs.length;
      if (this.batchCbs.length > 0) for (const cb of this.batchCbs) cb(bs);
      else for (const b of bs) for (const cb of this.packetCbs) cb(b);
    });
    this.fast.alive = () => this.alive();
    this.sendControl(Buffer.concat([Buffer.from([TYPE_FAST_PROBE]), this.fast.token]));
    this.consent = new ConsentPacer(conn as unknown as ConsentConnection, this.log, `link ${this.peer}`);
    this.consent.start();
    // SCTP's own heartbeats (werift: each way every 30 s, answers never judged) add nothing to the router's probes.
    (this.pc as unknown as { sctpTransport?: { sctp?: { setHeartbeatInterval?(s: number): void } } }).sctpTransport?.sctp?.setHeartbeatInterval?.(SCTP_HEARTBEAT_S);
  }

  probeIdle(answered: (rttMs: number) => void): boolean {
    return this.state === "open" && !!this.fast?.probeIdle(answered);
  }

  get sinceFastProbe(): number | undefined {
    return this.fast?.sinceProbeSent;
  }

  get fastMtu(): number | undefined {
    // Up with no size confirmed yet (or none of the sizes tried): every frame takes the data channel.
    return this.fast?.state === "up" && this.fast.mtu > 0 ? this.fast.mtu : undefined;
  }

  get remote(): string | undefined {
    const c = (this.pc as unknown as { iceTransports: { connection: { nominated?: { remoteCandidate: { host: string; port: number; type: string } } } }[] }).iceTransports[0]?.connection?.nominated?.remoteCandidate;
    return c ? `${c.host.includes(":") ? `[${c.host}]` : c.host}:${c.port} ${c.type}` : undefined;
  }

  /** The fast channel's state and counters (for status). */
  get fastStats(): FastStats | undefined {
    return this.fast ? { state: this.fast.state, mtu: this.fast.mtu, ...this.fast.stats, offload: this.fast.offload, socket: this.fast.socket, guard: this.guard ? { ...this.guard.stats } : undefined } : undefined;
  }

  private async gathered(): Promise<string> {
    const end = Date.now() + GATHER_TIMEOUT_MS;
    while (this.pc.iceGatheringState !== "complete" && Date.now() < end && this.state !== "closed") await Bun.sleep(10);
    return this.pc.localDescription?.sdp ?? "";
  }

  /** Offerer: make the SDP offer (candidates included). */
  async offer(): Promise<string> {
    this.channels();
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const sdp = await this.gathered();
    this.guardSockets();
    return sdp;
  }

  /** Answerer: take the remote offer and make the SDP answer. */
  async answer(offer: string): Promise<string> {
    await this.pc.setRemoteDescription({ type: "offer", sdp: offer } as never);
    this.channels();
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    const sdp = await this.gathered();
    this.guardSockets();
    return sdp;
  }

  /** Offerer: take the remote answer. */
  async accept(answer: string): Promise<void> {
    this.guardSockets(); // sockets gathering made after the offer went (it timed out first)
    await this.pc.setRemoteDescription({ type: "answer", sdp: answer } as never);
  }

  /**
   * Only the peer's checks and candidate pairs' DTLS reach werift, and no DTLS in the clear once it is
   * up (./sockguard.ts). Called once ICE has gathered: before the peer has our credentials and fingerprint.
   */
  private guardSockets(): void {
    const p = this.pc as unknown as { iceTransports: { connection?: GuardedConnection }[]; dtlsTransports: { state: string }[] };
    const conn = p.iceTransports[0]?.connection;
    if (!conn) return;
    // Not `this`: werift's sockets hold the guard, and may outlive the link (see pairFilter).
    const dtls = p.dtlsTransports, log = this.log, label = `link ${this.peer}`;
    this.guard ??= new SocketGuard(conn, () => dtls[0]?.state === "connected", (what) => log("info", `${label}: ${what}`));
    this.guard.hook();
  }

  /** Datagrams the socket guard dropped (./sockguard.ts). */
  get guardStats(): SocketGuardStats | undefined {
    return this.guard?.stats;
  }

  /** A sealed frame: the fast channel while it is up and the frame fits, else the packet data channel. */
  sendPacket(b: Uint8Array): boolean {
    if (this.fast?.send(b)) {
      this.stats.txPackets++;
      return true;
    }
    return this.sendProbe(b);
  }

  /** A frame that is not sealed (probes, beats): the packet data channel only. */
  sendProbe(b: Uint8Array): boolean {
    const dc = this.pkt;
    if (this.state !== "open" || !dc || dc.bufferedAmount > PKT_QUEUE_LIMIT) {
      this.stats.txDropped++;
      return false;
    }
    try {
      dc.send(Buffer.from(b.buffer, b.byteOffset, b.length));
      this.stats.txPackets++;
      return true;
    } catch {
      this.stats.txDropped++;
      return false;
    }
  }

  sendPackets(batch: readonly Uint8Array[], framing?: Framing): number {
    if (!this.fast) {
      let sent = 0;
      for (const b of batch) if (this.sendProbe(framing ? framed(b, framing) : b)) sent++;
      return sent;
    }
    // The fast channel takes the batch at once (its checks once, not per packet); what it does not take
    // goes over the data channel, as sendPacket sends it.
    let other = 0;
    const fast = this.fast.sendBatch(batch, (b) => {
      if (this.sendProbe(b)) other++;
    }, framing);
    this.stats.txPackets += fast;
    return fast + other;
  }

  sendControl(b: Uint8Array): void {
    if (this.state !== "open" || !this.ctl) return;
    try {
      this.ctl.send(Buffer.from(b.buffer, b.byteOffset, b.length));
    } catch (e) {
      this.log("debug", `link ${this.peer}: control send failed: ${(e as Error).message}`);
    }
  }

  onPacket(cb: (b: Uint8Array) => void): void {
    this.packetCbs.push(cb);
    this.flushEarly(false, cb);
  }
  onPackets(cb: (bs: Uint8Array[]) => void): void {
    this.batchCbs.push(cb);
  }
  onControl(cb: (b: Uint8Array) => void): void {
    this.controlCbs.push(cb);
    this.flushEarly(true, cb);
  }
  onAlive(cb: () => void): void {
    this.aliveCbs.push(cb);
  }

  private alive(): void {
    this.consent?.fresh();
    for (const cb of this.aliveCbs) cb();
  }

  private flushEarly(control: boolean, cb: (b: Uint8Array) => void): void {
    const mine = this.early.filter((m) => m.control === control);
    this.early = this.early.filter((m) => m.control !== control);
    for (const m of mine) cb(m.data);
  }
  onOpen(cb: () => void): void {
    this.openCbs.push(cb);
  }
  onClose(cb: (reason: string) => void): void {
    this.closeCbs.push(cb);
  }

  close(reason = "closed"): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.timer);
    this.fast?.close();
    this.consent?.stop();
    for (const cb of this.closeCbs) cb(reason);
    const parts = werifts(this.pc, this.ctl, this.pkt);
    const released = () => releaseEvents(parts);
    const t = setTimeout(released, RELEASE_AFTER_MS);
    this.pc.close().catch(() => {}).finally(() => (clearTimeout(t), released()));
  }
}

/** The candidates in an SDP, short: "host 10.0.0.2:5000, srflx 198.51.100.7:6000". */
export function candidates(sdp: string): string {
  return [...sdp.matchAll(/a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ (\w+)/gi)].map((m) => `${m[3]} ${m[1]}:${m[2]}`).join(", ") || "none";
}
