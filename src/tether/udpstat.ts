// A UDP socket as the kernel sees it (Linux): its receive buffer, the bytes waiting in it and the
// datagrams it dropped because it was full — for `trellis status` (links[].fast.socket), so a loss
// at the underlay socket shows where it happens.
import type { Socket } from "node:dgram";
import { readFileSync } from "node:fs";

export interface UdpSocketStat {
  /** SO_RCVBUF as the kernel doubled it (capped by net.core.rmem_max). */
  rcvbuf: number;
  /** Bytes waiting to be read. */
  rxQueue: number;
  /** Datagrams dropped with the buffer full (/proc/net/udp: shared by every link on that socket). */
  drops: number;
}

type Row = { rxQueue: number; drops: number };
let cache: { at: number; rows: Map<number, Row> } | undefined;

/** /proc/net/udp and udp6 by local port, read at most every 100 ms (a relay's status asks for every link). */
function udpTable(): Map<number, Row> {
  const now = performance.now();
  if (cache && now - cache.at < 100) return cache.rows;
  const rows = new Map<number, Row>();
  for (const file of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "latin1");
    } catch {}
    for (const line of text.split("\n")) {
      // sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode ref pointer drops
      const f = line.trim().split(/\s+/);
      if (f.length < 13 || !f[1].includes(":")) continue;
      const port = parseInt(f[1].slice(f[1].lastIndexOf(":") + 1), 16);
      if (Number.isFinite(port)) rows.set(port, { rxQueue: parseInt(f[4].split(":")[1], 16), drops: Number(f[12]) });
    }
  }
  cache = { at: now, rows };
  return rows;
}

/** The socket's kernel view; undefined off Linux, or when the socket is closed or not in the table. */
export function udpSocketStat(socket: Socket): UdpSocketStat | undefined {
  if (process.platform !== "linux") return;
  try {
    const row = udpTable().get(socket.address().port);
    return row && { rcvbuf: socket.getRecvBufferSize(), ...row };
  } catch {}
}
