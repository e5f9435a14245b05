// A link over the (TLS) WebSocket a node already holds to its seed: the transport where UDP is blocked.
//
// The node and the seed's relay exchange the same frames a WebRTC link carries, as binary WebSocket
// messages on the signalling socket (one connection for signalling and data, port 443 on a VPS):
//   0      1
//   +------+---------------------------+
//   | kind | frame (sealed packet, hop) |   kind 0: packet (sendPacket), 1: control (sendControl)
//   +------+---------------------------+
// Packets are dropped when the socket's send queue passes a few hundred KB (TCP under TCP: a short
// queue keeps the inner flows' congestion control honest); control frames queue further. Frames are
// as sealed as on any link: the seed's relay forwards what it cannot read.
import type { NodeId } from "../identity/identity.ts";
import type { Link } from "./webrtc.ts";

export const WS_KIND_PACKET = 0;
export const WS_KIND_CONTROL = 1;

/** The socket side: send one encoded frame (false when it was dropped). */
export type WsSend = (frame: Uint8Array, control: boolean) => boolean;

export class WsLink implements Link {
  state: "connecting" | "open" | "closed" = "open";
  readonly stats = { txPackets: 0, rxPackets: 0, txDropped: 0 };
  readonly fastMtu = undefined;
  readonly fastStats = undefined;
  readonly transport = "tcp" as const;
  private packetCbs: ((b: Uint8Array) => void)[] = [];
  private controlCbs: ((b: Uint8Array) => void)[] = [];
  private closeCbs: ((reason: string) => void)[] = [];

  constructor(readonly peer: NodeId, private readonly send: WsSend) {}

  /** A frame that arrived on the socket. */
  data(frame: Uint8Array): void {
    if (this.state !== "open" || frame.length < 2) return;
    const body = frame.subarray(1);
    if (frame[0] === WS_KIND_PACKET) {
      this.stats.rxPackets++;
      for (const cb of this.packetCbs) cb(body);
    } else if (frame[0] === WS_KIND_CONTROL) for (const cb of this.controlCbs) cb(body);
  }

  private out(kind: number, b: Uint8Array): boolean {
    if (this.state !== "open") return false;
    const f = new Uint8Array(1 + b.length);
    f[0] = kind;
    f.set(b, 1);
    return this.send(f, kind === WS_KIND_CONTROL);
  }

  sendProbe(b: Uint8Array): boolean {
    return this.sendPacket(b);
  }

  sendPacket(b: Uint8Array): boolean {
    if (this.out(WS_KIND_PACKET, b)) {
      this.stats.txPackets++;
      return true;
    }
    this.stats.txDropped++;
    return false;
  }

  sendControl(b: Uint8Array): void {
    this.out(WS_KIND_CONTROL, b);
  }

  onPacket(cb: (b: Uint8Array) => void): void {
    this.packetCbs.push(cb);
  }
  onControl(cb: (b: Uint8Array) => void): void {
    this.controlCbs.push(cb);
  }
  onOpen(cb: () => void): void {
    if (this.state === "open") cb();
  }
  onClose(cb: (reason: string) => void): void {
    this.closeCbs.push(cb);
  }

  close(reason = "closed"): void {
    if (this.state === "closed") return;
    this.state = "closed";
    for (const cb of this.closeCbs) cb(reason);
  }
}
