// Route frames: what relays forward (0xC5) and what adjacent nodes say to each other about links (0xC6).
//
// Forward frame (end-to-end, carried hop by hop; relays read only this header):
//   0      1      2       3          19         35              35+16n
//   +------+------+-------+----------+----------+---------------+--------------------+
//   | 0xC5 | hops | n     | dst id   | src id   | trace n×16    | inner (sealed)     |
//   +------+------+-------+----------+----------+---------------+--------------------+
//   hops   relay-to-relay forwards still allowed (the sender sets MAX_RELAYS - 1; 0 = deliver or drop)
//   trace  the relays the frame passed so far, each appended by the relay that forwards it
//   inner  a session packet (0xC1/0xC2/0xC4), a signed signal (0xC7 + JSON) or a delivery report
//          (0xC8), opaque to relays
//
// Hop frame (one link only, never forwarded): 0xC6, a kind byte, then the kind's body:
//   PROBE / PROBE_ACK  u32 probe id           liveness and RTT of the link
//   RECORD             a discovery record     gossip (src/route/record.ts)
//   LOOKUP / MISS      16-byte node id, or the first 10 bytes of one (the bits in an overlay IPv6
//                      address): ask an adjacent relay for that node's record
//   UNREACHABLE        16-byte node id        "I have no route to this node": avoid me for it a while
//
// Channels: which of a link's channels a frame rides is decided here, and only here (channelFor):
//   "fast"     sealed session data (0xC4), alone or inside a forward frame: the packet channel,
//              unordered and unreliable, and the fast datagram channel when the link has one
//   "probe"    PROBE / PROBE_ACK hop frames: the packet channel (they measure the packet path), the
//              control channel when that is full; never the fast channel (they are not sealed)
//   "control"  everything else (handshakes, signals, reports, records, lookups): reliable and ordered
import { NODE_ID_BYTES, nodeIdBytes, nodeIdFromBytes, type NodeId } from "../identity/identity.ts";
import { TYPE_DATA } from "../session/wire.ts";

export const TYPE_FORWARD = 0xc5;
export const TYPE_HOP = 0xc6;
/** Inner type of a signal envelope sent through relays (JSON after the type byte). */
export const TYPE_SIGNAL = 0xc7;
/**
 * Inner type of a delivery report (router to router, end to end, once a second while data flows):
 * 0xC8 | n u8 | n × (first relay's node id 16, or zeros for direct | bytes delivered u32). The sender's
 * path policy measures goodput with it. Not sealed: a relay on the path could alter it and so sway
 * which relay is chosen, nothing more.
 */
export const TYPE_REPORT = 0xc8;
/**
 * What a link may add to a frame it carries: the fast channel's per-link authentication (counter u64
 * and a 16-byte tag, src/tether/fast.ts). Room for it is kept in the packet limit of relay paths.
 */
export const LINK_AUTH_BYTES = 8 + 16;

/**
 * How the frames of a batch go on the wire when they share a head (a relay's re-framed forward frames,
 * a sender's forward frames on a relay path): each is `head` ‖ frame[skip..], so that no layer on the
 * way copies a frame of its own until the link does (src/tether/linkauth.ts tags it in that copy).
 */
export interface Framing {
  head: Uint8Array;
  skip: number;
}

/** The frame `head` ‖ f[skip..], made whole (where a link has no batch path for it). */
export function framed(f: Uint8Array, framing: Framing): Uint8Array {
  const b = new Uint8Array(framing.head.length + f.length - framing.skip);
  b.set(framing.head);
  b.set(f.subarray(framing.skip), framing.head.length);
  return b;
}

/** Every first byte a link carries for the router and session layers, by name (none written out bare). */
export { TYPE_DATA };

export type Channel = "fast" | "probe" | "control";

/** The channel a frame rides on a link (see the top of this file). */
export function channelFor(frame: Uint8Array): Channel {
  const t = frame[0];
  if (t === TYPE_DATA) return "fast";
  if (t === TYPE_FORWARD) {
    const at = FORWARD_HEADER + frame[2] * NODE_ID_BYTES;
    return frame.length > at && frame[at] === TYPE_DATA ? "fast" : "control";
  }
  if (t === TYPE_HOP && (frame[1] === HOP_PROBE || frame[1] === HOP_PROBE_ACK)) return "probe";
  return "control";
}

/** channelFor of the frame framing.head ‖ f[framing.skip..], without making it. */
export function channelForFramed(framing: Framing, f: Uint8Array): Channel {
  const h = framing.head;
  if (h[0] !== TYPE_FORWARD || h.length !== FORWARD_HEADER + h[2] * NODE_ID_BYTES) return channelFor(framed(f, framing));
  return f.length > framing.skip && f[framing.skip] === TYPE_DATA ? "fast" : "control";
}

/** At most this many relays between source and destination. */
export const MAX_RELAYS = 3;
export const FORWARD_HEADER = 3 + 2 * NODE_ID_BYTES;

export const HOP_PROBE = 1;
export const HOP_PROBE_ACK = 2;
export const HOP_RECORD = 3;
export const HOP_LOOKUP = 4;
export const HOP_MISS = 5;
export const HOP_UNREACHABLE = 6;
/** Which member of our network holds this IPv4 address or name (body: src/node/members.ts). */
export const HOP_MEMBER_LOOKUP = 7;
/** The answer: the holder's membership certificate in a network the asker proved it is in. */
export const HOP_MEMBER = 8;
/** A record passed on with its origin's membership certificate: record length u16 | record | certificate. */
export const HOP_RECORD_CERT = 9;
export type HopKind =
  | typeof HOP_PROBE | typeof HOP_PROBE_ACK | typeof HOP_RECORD | typeof HOP_LOOKUP | typeof HOP_MISS | typeof HOP_UNREACHABLE
  | typeof HOP_MEMBER_LOOKUP | typeof HOP_MEMBER | typeof HOP_RECORD_CERT;

export interface Forward {
  hops: number;
  dst: NodeId;
  src: NodeId;
  trace: NodeId[];
  inner: Uint8Array;
}

/** A new forward frame from `src` (no trace yet). */
export function encodeForward(dst: NodeId, src: NodeId, inner: Uint8Array, hops = MAX_RELAYS - 1): Uint8Array {
  const f = new Uint8Array(FORWARD_HEADER + inner.length);
  f[0] = TYPE_FORWARD;
  f[1] = hops;
  f[2] = 0;
  f.set(nodeIdBytes(dst), 3);
  f.set(nodeIdBytes(src), 3 + NODE_ID_BYTES);
  f.set(inner, FORWARD_HEADER);
  return f;
}

/** Parse a forward frame; undefined when it is malformed (too short, trace too long). */
export function decodeForward(f: Uint8Array): Forward | undefined {
  if (f.length < FORWARD_HEADER + 1 || f[0] !== TYPE_FORWARD) return undefined;
  const n = f[2];
  // A sender may allow at most MAX_RELAYS - 1 relay-to-relay hops, and what is left plus the trace never exceeds MAX_RELAYS.
  if (n > MAX_RELAYS || f[1] > MAX_RELAYS - 1 || n + f[1] > MAX_RELAYS) return undefined;
  const start = FORWARD_HEADER + n * NODE_ID_BYTES;
  if (f.length <= start) return undefined;
  const trace: NodeId[] = [];
  for (let i = 0; i < n; i++) trace.push(nodeIdFromBytes(f.subarray(FORWARD_HEADER + i * NODE_ID_BYTES, FORWARD_HEADER + (i + 1) * NODE_ID_BYTES)));
  return {
    hops: f[1],
    dst: nodeIdFromBytes(f.subarray(3, 3 + NODE_ID_BYTES)),
    src: nodeIdFromBytes(f.subarray(3 + NODE_ID_BYTES, FORWARD_HEADER)),
    trace,
    inner: f.subarray(start),
  };
}

/** relayed()'s header alone (up to the inner packet, which a Framing then appends: skip = f's header length). */
export function relayedHead(f: Uint8Array, relay: NodeId, toRelay: boolean): Uint8Array {
  const n = f[2];
  const at = FORWARD_HEADER + n * NODE_ID_BYTES;
  const out = new Uint8Array(at + NODE_ID_BYTES);
  out.set(f.subarray(0, at));
  out.set(nodeIdBytes(relay), at);
  out[1] = toRelay ? f[1] - 1 : f[1];
  out[2] = n + 1;
  return out;
}

/** The frame a relay passes on: `relay` appended to the trace, hops spent when the next hop is another relay. */
export function relayed(f: Uint8Array, relay: NodeId, toRelay: boolean): Uint8Array {
  const n = f[2];
  const at = FORWARD_HEADER + n * NODE_ID_BYTES;
  const out = new Uint8Array(f.length + NODE_ID_BYTES);
  out.set(f.subarray(0, at));
  out.set(nodeIdBytes(relay), at);
  out.set(f.subarray(at), at + NODE_ID_BYTES);
  out[1] = toRelay ? f[1] - 1 : f[1];
  out[2] = n + 1;
  return out;
}

export function encodeHop(kind: HopKind, body: Uint8Array): Uint8Array {
  const f = new Uint8Array(2 + body.length);
  f[0] = TYPE_HOP;
  f[1] = kind;
  f.set(body, 2);
  return f;
}

export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

export function readU32(b: Uint8Array): number | undefined {
  return b.length === 4 ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0) : undefined;
}

export function idBody(id: NodeId): Uint8Array {
  return nodeIdBytes(id);
}

export function readId(b: Uint8Array): NodeId | undefined {
  return b.length === NODE_ID_BYTES ? nodeIdFromBytes(b) : undefined;
}
