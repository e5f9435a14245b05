// "Don't fragment" on a UDP socket (setsockopt through libc): the fast channel's datagrams carry DF and
// are never cut by the local kernel, so its MTU probes find the path's real size; a datagram too big
// for the path fails at once (the link sends that packet over its data channel instead).
import { dlopen } from "bun:ffi";

const IPPROTO_IP = 0, IP_MTU_DISCOVER = 10, IP_PMTUDISC_DO = 2;
const IPPROTO_IPV6 = 41, IPV6_MTU_DISCOVER = 23, IPV6_PMTUDISC_DO = 2;
const LIBC = ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, `/lib/ld-musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`];

let setsockopt: ((fd: number, level: number, name: number, value: Int32Array, len: number) => number) | null | undefined;

function load(): typeof setsockopt {
  if (setsockopt !== undefined) return setsockopt;
  setsockopt = null;
  for (const name of LIBC) {
    try {
      const lib = dlopen(name, { setsockopt: { args: ["int", "int", "int", "ptr", "u32"], returns: "int" } });
      setsockopt = (fd, level, opt, value, len) => lib.symbols.setsockopt(fd, level, opt, value, len);
      break;
    } catch {}
  }
  return setsockopt;
}

/** Set DF (path MTU discovery "do") on socket `fd` for IPv4 and IPv6; false when neither took. */
export function dontFragment(fd: number): boolean {
  const set = load();
  if (!set || fd < 0) return false;
  const v4 = set(fd, IPPROTO_IP, IP_MTU_DISCOVER, new Int32Array([IP_PMTUDISC_DO]), 4) === 0;
  const v6 = set(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, new Int32Array([IPV6_PMTUDISC_DO]), 4) === 0;
  return v4 || v6;
}

const SOL_UDP = 17, UDP_GRO = 104;

/**
 * UDP GRO on socket `fd` (Linux 5.0+): a burst of equal-size datagrams from one sender (a UDP GSO batch)
 * arrives as one buffer, which the reader cuts apart (./fast.ts: the kernel's segment size does not reach
 * JavaScript, so the fast channel finds it from the repeated header). False where the kernel refuses it.
 */
export function udpGro(fd: number): boolean {
  const set = load();
  if (!set || fd < 0 || process.platform !== "linux") return false;
  return set(fd, SOL_UDP, UDP_GRO, new Int32Array([1]), 4) === 0;
}
