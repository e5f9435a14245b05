// UDP GRO on the fast channel's socket: the kernel hands a run of our datagrams as one read, and this
// file finds where to cut it. A GSO run (./udpsend.ts) holds only datagrams that share their leading
// bytes (headerBytes), so the cut is where those bytes repeat; Bun does not pass on the kernel's
// segment-size control message. A wrong cut could only fail authentication, never deliver bad data.
import { TYPE_DATA } from "../session/wire.ts";
import { TYPE_FORWARD } from "../route/frame.ts";

/**
 * How many leading bytes every datagram of one GSO run shares (0: this kind never rides a run): session
 * data, its type word and receiver index; forward frames, type, hops, trace length and destination.
 * A run holds only datagrams that agree on them, so a coalesced read is cut where they repeat.
 */
export function headerBytes(b: Uint8Array): number {
  return b[0] === TYPE_DATA ? 8 : b[0] === TYPE_FORWARD ? 19 : 0;
}
export function sameHeader(a: Uint8Array, b: Uint8Array): boolean {
  const n = headerBytes(a);
  if (n === 0 || b.length < n) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
/** The smallest datagram of ours a coalesced read can hold: a session data packet with no payload. */
const MIN_SEGMENT = 32;

/** Whether a datagram of ours could start at `at` (a type word of session data; a forward frame's type). */
function looksLikeStart(b: Uint8Array, at: number): boolean {
  if (b[at] === TYPE_DATA) return b[at + 1] === 0 && b[at + 2] === 0 && b[at + 3] === 0;
  return b[at] === TYPE_FORWARD && b[at + 1] < 16 && b[at + 2] < 16;
}

/**
 * The segment size of a read that UDP GRO coalesced from one of our GSO runs (every datagram that size
 * but the last), or 0 when `b` is one datagram. The kernel reports the size in a control message Bun
 * does not pass on, so it is found where the first datagram's header repeats (a single datagram holds
 * no repeat: 64 bits or more would have to match by chance in its ciphertext), and every later boundary
 * must repeat it too. A NIC's GRO may also coalesce datagrams sent apart with other headers (another
 * session after a rekey): then the smallest divisor of that distance whose boundaries all look like
 * the start of a datagram of ours. A wrong cut could only fail authentication.
 */
export function segmentSize(b: Uint8Array): number {
  const n = headerBytes(b);
  if (n === 0 || b.length < 2 * MIN_SEGMENT) return 0;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  const repeat = buf.indexOf(buf.subarray(0, n), MIN_SEGMENT);
  if (repeat < 0) return 0;
  for (let d = Math.floor(repeat / MIN_SEGMENT); d >= 2; d--) {
    if (repeat % d !== 0) continue;
    const size = repeat / d;
    let ok = true;
    for (let at = size; at < b.length && ok; at += size) ok = looksLikeStart(b, at);
    if (ok) return size;
  }
  for (let at = 2 * repeat; at < b.length; at += repeat) if (!sameHeader(b, b.subarray(at, at + n))) return 0;
  return repeat;
}
