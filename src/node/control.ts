// Overlay control messages carried inside sessions beside IP packets: ping and pong for RTT.
//
// A session payload whose first nibble is 4 or 6 is an IP packet; anything else is control:
//   0      1          5     6
//   +------+----------+-----+--------------+
//   | type | probe id | (n  | n × node id) |   type 0x01 ping, 0x02 pong (the pong echoes the ping's id,
//   +------+----------+-----+--------------+   then the relays the ping passed: n ≤ 3, empty = direct)
import { nodeIdBytes, nodeIdFromBytes, type NodeId } from "../identity/identity.ts";

export const CONTROL_PING = 0x01;
export const CONTROL_PONG = 0x02;
/** 0x03 followed by a root-signed revocation record (src/trust/revocation.ts). */
export const CONTROL_REVOCATION = 0x03;

/** 0x04 followed by a root-signed policy record (src/trust/policy.ts). */
export const CONTROL_POLICY = 0x04;

/** A control message carrying a signed record (revocation or policy). */
export function recordMessage(type: typeof CONTROL_REVOCATION | typeof CONTROL_POLICY, record: Uint8Array): Uint8Array {
  const m = new Uint8Array(1 + record.length);
  m[0] = type;
  m.set(record, 1);
  return m;
}
const CONTROL_BYTES = 5;

interface Waiting {
  to: NodeId;
  sentAt: number;
  resolve(rttMs: number | null): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Sends overlay pings and matches pongs; answers pings from peers. */
export class Prober {
  private nextId = 1;
  private waiting = new Map<number, Waiting>();

  constructor(
    private readonly send: (to: NodeId, payload: Uint8Array) => void,
    private readonly now: () => number = () => performance.now(),
    /** The relays the last packet from a peer passed (put in pongs). */
    private readonly traceFrom: (from: NodeId) => NodeId[] = () => [],
  ) {}

  /** Ping `to`; resolves to the RTT in ms, or null after `timeoutMs`. */
  ping(to: NodeId, timeoutMs = 2000): Promise<number | null> {
    const id = this.nextId++ >>> 0;
    const msg = new Uint8Array(CONTROL_BYTES);
    msg[0] = CONTROL_PING;
    new DataView(msg.buffer).setUint32(1, id);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(id, { to, sentAt: this.now(), resolve, timer });
      this.send(to, msg);
    });
  }

  /** A control payload from an authenticated peer; when it completes one of our pings: the RTT, and the relays the ping passed. */
  receive(from: NodeId, payload: Uint8Array): { rttMs: number; trace: NodeId[] } | undefined {
    if (payload.length < CONTROL_BYTES) return;
    if (payload[0] === CONTROL_PING && payload.length === CONTROL_BYTES) {
      const trace = this.traceFrom(from).slice(0, 3);
      const reply = new Uint8Array(CONTROL_BYTES + 1 + 16 * trace.length);
      reply.set(payload);
      reply[0] = CONTROL_PONG;
      reply[CONTROL_BYTES] = trace.length;
      trace.forEach((id, i) => reply.set(nodeIdBytes(id), CONTROL_BYTES + 1 + 16 * i));
      this.send(from, reply);
      return;
    }
    if (payload[0] !== CONTROL_PONG) return;
    const id = new DataView(payload.buffer, payload.byteOffset).getUint32(1);
    const w = this.waiting.get(id);
    if (!w || w.to !== from) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    const rttMs = this.now() - w.sentAt;
    const n = payload.length > CONTROL_BYTES ? Math.min(3, payload[CONTROL_BYTES]) : 0;
    const trace: NodeId[] = [];
    for (let i = 0; i < n && payload.length >= CONTROL_BYTES + 1 + 16 * (i + 1); i++) trace.push(nodeIdFromBytes(payload.subarray(CONTROL_BYTES + 1 + 16 * i, CONTROL_BYTES + 17 + 16 * i)));
    w.resolve(rttMs);
    return { rttMs, trace };
  }

  stop(): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.resolve(null);
    }
    this.waiting.clear();
  }
}
