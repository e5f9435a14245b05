// UDP segmentation offload on send (Linux UDP_SEGMENT, 4.18+): one sendmsg carries a run of datagrams
// that are all the same size but the last (which may be shorter); the kernel cuts them apart as late as
// it can (on a veth, never: the receiving socket or the far NIC does), so a burst of sealed packets
// costs one syscall instead of one per datagram. As upstream wireguard-go (conn/bind_std.go,
// conn/gso_linux.go): at most 64 segments per send; a kernel or path that refuses it (EIO: the device
// cannot checksum, or EINVAL where the socket's family does not take it) turns it off for that socket,
// and the batch goes again datagram by datagram.
//
// Called through libc with bun:ffi (sendmsg with a UDP_SEGMENT control message, built here over
// preallocated buffers: the iovecs point at the caller's datagrams, nothing is copied), so it needs no
// compiler and works on glibc and musl alike; msghdr, iovec and cmsghdr have the same layout on x86_64
// and aarch64 (musl's socklen_t fields with padding read the same in little-endian).
import { dlopen, ptr, read, type Pointer } from "bun:ffi";

const SOL_UDP = 17, UDP_SEGMENT = 103;
const AF_INET = 2, AF_INET6 = 10;
const EINTR = 4, EIO = 5, EINVAL = 22, EMSGSIZE = 90, ENOPROTOOPT = 92, EOPNOTSUPP = 95;
/** The kernel's limit (UDP_MAX_SEGMENTS) on older kernels; newer ones take 128. */
export const GSO_MAX_SEGMENTS = 64;
/** Bytes of UDP payload in one send at most (65535 minus IPv6/IPv4 and UDP headers, with room). */
export const GSO_MAX_BYTES = 65_000;
const LIBC = ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, `/lib/ld-musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`];

type Libc = {
  sendmsg(fd: number, msg: number, flags: number): number;
  getsockname(fd: number, addr: Uint8Array, len: Uint32Array): number;
  errno(): number;
};
let libc: Libc | null | undefined;
function load(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== "linux" || process.env.TRELLIS_UDP_GSO === "0") return libc;
  for (const name of LIBC) {
    try {
      const l = dlopen(name, {
        // ssize_t, read as int: the low 32 bits hold any count we send, and -1.
        sendmsg: { args: ["int", "ptr", "int"], returns: "int" },
        getsockname: { args: ["int", "ptr", "ptr"], returns: "int" },
        __errno_location: { args: [], returns: "ptr" },
      }).symbols;
      libc = {
        sendmsg: (fd, m, f) => l.sendmsg(fd, m as Pointer, f),
        getsockname: (fd, a, n) => l.getsockname(fd, a, n),
        errno: () => read.i32(l.__errno_location()!, 0),
      };
      break;
    } catch {}
  }
  return libc ?? null;
}

/** What a send did: datagrams the kernel took, or that GSO was refused (the caller sends them otherwise). */
export type GsoResult = { sent: number } | { refused: string };

/** Address → sockaddr bytes for a socket of `family`; undefined for what we do not parse (zone ids). */
function sockaddr(family: number, host: string, port: number): Uint8Array | undefined {
  const v4 = parse4(host);
  if (family === AF_INET) {
    if (!v4) return;
    const b = new Uint8Array(16);
    b[0] = AF_INET; // sa_family is host-endian u16: little-endian on both targets
    b[2] = port >> 8;
    b[3] = port & 255;
    b.set(v4, 4);
    return b;
  }
  const v6 = v4 ? Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, ...v4]) : parse6(host);
  if (!v6) return;
  const b = new Uint8Array(28);
  b[0] = AF_INET6;
  b[2] = port >> 8;
  b[3] = port & 255;
  b.set(v6, 8);
  return b;
}

function parse4(s: string): number[] | undefined {
  const p = s.split(".");
  if (p.length !== 4) return;
  const n = p.map((x) => (/^\d{1,3}$/.test(x) ? Number(x) : 256));
  return n.every((x) => x < 256) ? n : undefined;
}

/** An IPv6 address in text → 16 bytes; undefined for a zone id or anything malformed. */
export function parse6(s: string): Uint8Array | undefined {
  if (s.includes("%")) return;
  let tail4: number[] | undefined;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".", lastColon)) {
    tail4 = parse4(s.slice(lastColon + 1));
    if (!tail4) return;
    s = s.slice(0, lastColon + 1) + "0:0";
  }
  const halves = s.split("::");
  if (halves.length > 2) return;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]), tail = halves.length === 2 ? groups(halves[1]) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return;
  const all = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i])) return;
    const v = parseInt(all[i], 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 255;
  }
  if (tail4) out.set(tail4, 12);
  return out;
}

/** One socket's GSO sender (the socket's fd stays owned by whoever opened it). */
export class GsoSocket {
  /** Set once the kernel refused GSO on this socket: why (then every send returns refused). */
  refused?: string;
  /** Sends that carried more than one datagram, and the datagrams they carried. */
  batches = 0;
  segments = 0;
  private readonly msg = new Uint8Array(56);
  private readonly iov = new Uint32Array(GSO_MAX_SEGMENTS * 4);
  private readonly cmsg = new Uint8Array(24);
  private readonly msgView = new DataView(this.msg.buffer);
  private readonly cmsgView = new DataView(this.cmsg.buffer);
  private readonly msgPtr: number;
  private name?: Uint8Array;
  private nameHost = "";
  private namePort = -1;

  private constructor(private readonly lib: Libc, private readonly fd: number, private readonly family: number) {
    this.msgPtr = ptr(this.msg);
    this.setPtr(this.msgView, 16, ptr(this.iov));
    this.setPtr(this.msgView, 32, ptr(this.cmsg));
    this.msgView.setUint32(40, this.cmsg.length, true);
    this.cmsgView.setUint32(0, 18, true); // CMSG_LEN(2)
    this.cmsgView.setInt32(8, SOL_UDP, true);
    this.cmsgView.setInt32(12, UDP_SEGMENT, true);
  }

  /** A sender for socket `fd`, or undefined where this system cannot (not Linux, no libc, not a UDP socket). */
  static open(fd: number | undefined): GsoSocket | undefined {
    const lib = load();
    if (!lib || fd === undefined || fd < 0) return;
    const addr = new Uint8Array(128), len = new Uint32Array([128]);
    if (lib.getsockname(fd, addr, len) !== 0) return;
    const family = addr[0] | (addr[1] << 8);
    if (family !== AF_INET && family !== AF_INET6) return;
    return new GsoSocket(lib, fd, family);
  }

  private setPtr(v: DataView, off: number, p: number): void {
    v.setUint32(off, p >>> 0, true);
    v.setUint32(off + 4, Math.floor(p / 4294967296), true);
  }

  /**
   * Send `ds[from..to)` to host:port in one sendmsg, cut by the kernel every `size` bytes: each datagram
   * but the last must be exactly `size` bytes, the last at most that; at most GSO_MAX_SEGMENTS and
   * GSO_MAX_BYTES in all. `sent` is to - from on success and 0 when the kernel dropped the run.
   */
  send(ds: readonly Uint8Array[], from: number, to: number, size: number, host: string, port: number): GsoResult {
    if (this.refused) return { refused: this.refused };
    if (host !== this.nameHost || port !== this.namePort) {
      this.name = sockaddr(this.family, host, port);
      this.nameHost = host;
      this.namePort = port;
    }
    if (!this.name) return { refused: `address ${host} not taken by GSO` };
    const n = to - from;
    const iov = this.iov;
    for (let i = 0; i < n; i++) {
      const d = ds[from + i];
      const p = ptr(d);
      iov[i * 4] = p >>> 0;
      iov[i * 4 + 1] = Math.floor(p / 4294967296);
      iov[i * 4 + 2] = d.length;
      iov[i * 4 + 3] = 0;
    }
    return this.sendIov(n, n, size);
  }

  /**
   * send() for `count` datagrams that lie back to back in buf[0..length), each `size` bytes but the last
   * (at most that): one iovec for them all.
   */
  sendRun(buf: Uint8Array, length: number, count: number, size: number, host: string, port: number): GsoResult {
    if (this.refused) return { refused: this.refused };
    if (host !== this.nameHost || port !== this.namePort) {
      this.name = sockaddr(this.family, host, port);
      this.nameHost = host;
      this.namePort = port;
    }
    if (!this.name) return { refused: `address ${host} not taken by GSO` };
    const p = ptr(buf);
    this.iov[0] = p >>> 0;
    this.iov[1] = Math.floor(p / 4294967296);
    this.iov[2] = length;
    this.iov[3] = 0;
    return this.sendIov(1, count, size);
  }

  /** sendmsg over the first `iovs` iovecs, `n` datagrams of `size` (the name is set). */
  private sendIov(iovs: number, n: number, size: number): GsoResult {
    const m = this.msgView;
    this.setPtr(m, 0, ptr(this.name!));
    m.setUint32(8, this.name!.length, true);
    m.setUint32(24, iovs, true);
    m.setUint32(28, 0, true);
    this.cmsgView.setUint16(16, size, true);
    for (;;) {
      const r = this.lib.sendmsg(this.fd, this.msgPtr, 0);
      if (r >= 0) {
        this.batches++;
        this.segments += n;
        return { sent: n };
      }
      const e = this.lib.errno();
      if (e === EINTR) continue;
      // EIO: the device cannot checksum (as wireguard-go: GSO off for good on this socket).
      if (e === EIO) return { refused: (this.refused = "EIO (the device cannot checksum UDP)") };
      // EINVAL, ENOPROTOOPT, EOPNOTSUPP: the kernel or the socket's family does not take it here, or a
      // segment is larger than the path (EMSGSIZE too): the caller resends one by one and, if that
      // works, calls refuse(). Anything else (a full buffer, a pending ICMP error, no route) drops the
      // run, as it would have dropped the datagrams one by one.
      if (e === EINVAL || e === EMSGSIZE) return { refused: e === EINVAL ? "EINVAL" : "EMSGSIZE" };
      if (e === ENOPROTOOPT || e === EOPNOTSUPP) return { refused: "not supported" };
      return { sent: 0 };
    }
  }

  /** The caller found the same datagrams go through without GSO: the refusal was GSO's; stop trying. */
  refuse(why: string): void {
    this.refused ??= why;
  }
}
