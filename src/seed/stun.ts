// A STUN responder (RFC 5389 Binding only): tells a node its server-reflexive address for ICE.
// Anything that is not a well-formed Binding Request is ignored, and so is a request shorter than its
// answer would be (32 bytes for IPv4, 44 for IPv6): the responder never reflects more than it received.
// Our nodes pad their requests (src/tether/webrtc.ts, a SOFTWARE attribute).
import type { Socket } from "bun";

const MAGIC = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;
/**
 * Requests up to jumbo size are answered: `trellis netcheck` pads requests (don't-fragment set) to find
 * the path MTU. The answer stays 32–44 bytes whatever the request's size, so nothing is amplified.
 */
export const MAX_STUN_REQUEST = 9000;

/** The Binding success response for `req` from `address:port`, or null if `req` is not a Binding Request. */
export function bindingResponse(req: Uint8Array, address: string, port: number): Uint8Array | null {
  if (req.length < 20 || req.length > MAX_STUN_REQUEST) return null;
  const dv = new DataView(req.buffer, req.byteOffset, req.length);
  if (dv.getUint16(0) !== BINDING_REQUEST || dv.getUint32(4) !== MAGIC || dv.getUint16(2) + 20 !== req.length || (dv.getUint16(2) & 3)) return null;
  const txid = req.subarray(8, 20);
  const v4 = /^\d+\.\d+\.\d+\.\d+$/.test(address) ? address : address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : null;
  const addrLen = v4 ? 4 : 16;
  if (req.length < 20 + 4 + 4 + addrLen) return null;
  const out = new Uint8Array(20 + 4 + 4 + addrLen);
  const o = new DataView(out.buffer);
  o.setUint16(0, BINDING_SUCCESS);
  o.setUint16(2, 4 + 4 + addrLen);
  o.setUint32(4, MAGIC);
  out.set(txid, 8);
  o.setUint16(20, XOR_MAPPED_ADDRESS);
  o.setUint16(22, 4 + addrLen);
  o.setUint8(25, v4 ? 0x01 : 0x02);
  o.setUint16(26, port ^ (MAGIC >>> 16));
  const xorKey = new Uint8Array(16);
  new DataView(xorKey.buffer).setUint32(0, MAGIC);
  xorKey.set(txid, 4);
  let raw: number[];
  if (v4) raw = v4.split(".").map(Number);
  else {
    const full = expandIpv6(address);
    if (!full) return null;
    raw = full;
  }
  for (let i = 0; i < addrLen; i++) out[28 + i] = raw[i] ^ xorKey[i];
  return out;
}

function expandIpv6(a: string): number[] | null {
  const [head, tail] = a.split("::");
  const h = head ? head.split(":") : [], t = tail ? tail.split(":") : [];
  const groups = a.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  if (groups.length !== 8) return null;
  return groups.flatMap((g) => {
    const v = parseInt(g, 16);
    return [v >> 8, v & 0xff];
  });
}

/** Serve STUN on UDP host:port (port 0: one the kernel picks, reported as `port`). */
export async function startStun(host: string, port: number): Promise<{ port: number; stop(): void; stats: { answered: number; ignored: number } }> {
  const stats = { answered: 0, ignored: 0 };
  const sock = await Bun.udpSocket({
    hostname: host,
    port,
    socket: {
      data(s: Socket<"udp"> | any, data: Uint8Array, rport: number, raddr: string) {
        try {
          const res = bindingResponse(data, raddr, rport);
          if (!res) return void stats.ignored++;
          s.send(res, rport, raddr);
          stats.answered++;
        } catch {
          stats.ignored++;
        }
      },
      error() {},
    },
  } as any);
  return { port: sock.port, stop: () => sock.close(), stats };
}
