// Session packet types: the first byte of every packet the session layer puts on a link.
//
// Values sit in 0xC0–0xFF, clear of what shares a WebRTC 5-tuple: STUN (0–3), DTLS (20–63),
// TURN channel data (0x40–0x4F) and RTP/RTCP (128–191).
export const TYPE_INIT_FRAGMENT = 0xc1;
export const TYPE_RESP_FRAGMENT = 0xc2;
import { TYPE_COOKIE_REPLY } from "../handshake/messages.ts";
/** A responder's cookie reply under load (src/handshake/messages.ts), one 52-byte datagram. */
export { TYPE_COOKIE_REPLY };
export const TYPE_DATA = 0xc4;

export function isHandshakePacket(p: Uint8Array): boolean {
  return p.length > 0 && (p[0] === TYPE_INIT_FRAGMENT || p[0] === TYPE_RESP_FRAGMENT || p[0] === TYPE_COOKIE_REPLY);
}
