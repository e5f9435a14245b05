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
import type { NodeId, PublicIdentity } from "../identity/identity.ts";
import { LinkListeners } from "./listeners.ts";
import type { Link } from "./webrtc.ts";

export const WS_KIND_PACKET = 0;
export const WS_KIND_CONTROL = 1;

/** The socket side: send one encoded frame (false when it was dropped). */
export type WsSend = (frame: Uint8Array, control: boolean) => boolean;

/** The seed's side (src/seed/server.ts): a registered node's data frames on its signalling socket, carried by the node (links.ts tetherHost). */
export interface TetherPort {
  /** A registered node asks us to carry its data: a sink for its frames, or why not. */
  open(remote: PublicIdentity, certs: string[], send: WsSend, close: (why: string) => void): TetherSink | string;
}
export interface TetherSink {
  data(frame: Uint8Array): void;
  closed(): void;
}

export class WsLink extends LinkListeners implements Link {
  readonly fastMtu = undefined;
  readonly fastStats = undefined;
  readonly transport = "tcp" as const;

  constructor(readonly peer: NodeId, private readonly send: WsSend) {
    super();
  }

  /** A frame that arrived on the socket. */
  data(frame: Uint8Array): void {
    if (this.state !== "open" || frame.length < 2) return;
    if (frame[0] === WS_KIND_PACKET || frame[0] === WS_KIND_CONTROL) this.deliver(frame.subarray(1), frame[0] === WS_KIND_CONTROL);
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
    return this.counted(this.out(WS_KIND_PACKET, b));
  }

  sendControl(b: Uint8Array): void {
    this.out(WS_KIND_CONTROL, b);
  }
}
