// The TUN helper's four functions: ffi/tun.c compiled at run time with bun:ffi's cc (TinyCC), or, where
// TinyCC cannot link (no libc.so development link on a Raspberry Pi or router), the same logic over libc
// called directly with dlopen. The C source is embedded so the binary carries it.
import { cc, dlopen, read, toArrayBuffer, type Pointer } from "bun:ffi";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import source from "../../ffi/tun.c" with { type: "text" };

/** The virtio-net header before every packet on a device opened with one (ffi/tun.c). */
export const VNET_HDR_LEN = 10;

export interface TunLib {
  /** fd or -errno; the kernel's interface name is written to outName (16 bytes). `vnet`: 1 for virtio-net headers (only where `gro`). */
  tun_open(name: Uint8Array, outName: Uint8Array, vnet: number): number;
  /** Packets read (0 on time-out) or -errno; packet i at buf + i*stride, its length in lens[i]. */
  tun_read_batch(fd: number, buf: Pointer, stride: number, lens: Pointer, max: number, timeoutMs: number): number;
  tun_write(fd: number, buf: Uint8Array, len: number): number;
  tun_close(fd: number): number;
  /** Write n packets (base + offs[i], lens[i] bytes) to a vnet TUN, TCP runs coalesced; returns drops. Only where `gro`. */
  tun_write_gro?(fd: number, base: Pointer, offs: Pointer, lens: Pointer, n: number, scratch: Pointer): number;
  /** Write one packet to a vnet TUN (a zero virtio-net header before it): 0, or -errno. Only where `gro`. */
  tun_write_vnet?(fd: number, packet: Uint8Array, len: number): number;
  /** Ask a vnet TUN for large segments (TSO, and USO when `uso`): the flags in force, or -errno. Only where `gro`. */
  tun_offload?(fd: number, uso: number): number;
  /** tun_read_batch on a vnet TUN with offloads: large segments come back cut into packets, each slot
   *  keeping the virtio-net header's room before its packet; segs[0] counts segments cut. Only where `gro`. */
  tun_read_tso?(fd: number, buf: Pointer, stride: number, lens: Pointer, max: number, timeoutMs: number, segs: Pointer): number;
  /** One vnet read made into packets in place (tun_read_tso's step, exported for its tests). Only where `gro`. */
  tun_split?(at: Pointer, got: number, stride: number, lens: Pointer, room: number, segs: Pointer): number;
  /** Whether this build can open the TUN with virtio-net headers and write coalesced TCP (ffi/tun.c only). */
  readonly gro: boolean;
}

const SYMBOLS = {
  tun_open: { args: ["ptr", "ptr", "int"], returns: "int" },
  tun_write_gro: { args: ["int", "ptr", "ptr", "ptr", "int", "ptr"], returns: "int" },
  tun_write_vnet: { args: ["int", "ptr", "int"], returns: "int" },
  tun_read_batch: { args: ["int", "ptr", "int", "ptr", "int", "int"], returns: "int" },
  tun_offload: { args: ["int", "int"], returns: "int" },
  tun_split: { args: ["ptr", "int", "int", "ptr", "int", "ptr"], returns: "int" },
  tun_read_tso: { args: ["int", "ptr", "int", "ptr", "int", "int", "ptr"], returns: "int" },
  tun_write: { args: ["int", "ptr", "int"], returns: "int" },
  tun_close: { args: ["int"], returns: "int" },
} as const;

function compile(): TunLib {
  const dir = mkdtempSync(join(tmpdir(), "trellis-ffi-"));
  try {
    const file = join(dir, "tun.c");
    writeFileSync(file, source, { mode: 0o600 });
    return { ...(cc({ source: file, symbols: SYMBOLS }).symbols as unknown as TunLib), gro: process.env.TRELLIS_TUN_GRO !== "0" };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Constants as in ffi/tun.c (the same on x86_64 and aarch64 Linux).
const O_RDWR = 0o2, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;
const TUNSETIFF = 0x400454ca, IFF_TUN = 0x0001, IFF_NO_PI = 0x1000, POLLIN = 1, EAGAIN = 11, EINTR = 4;
const LIBC_NAMES = ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, `/lib/ld-musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, "libc.so"];

function libc() {
  const syms = {
    open: { args: ["ptr", "int", "int"], returns: "int" },
    ioctl: { args: ["int", "u64", "ptr"], returns: "int" },
    read: { args: ["int", "ptr", "u64"], returns: "i64" },
    write: { args: ["int", "ptr", "u64"], returns: "i64" },
    poll: { args: ["ptr", "u64", "int"], returns: "int" },
    close: { args: ["int"], returns: "int" },
    __errno_location: { args: [], returns: "ptr" },
  } as const;
  let last: unknown;
  for (const name of LIBC_NAMES) {
    try {
      return dlopen(name, syms).symbols;
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`cannot load libc for the TUN device: ${(last as Error)?.message}`);
}

/** The same functions as ffi/tun.c, in TypeScript over libc. */
function viaLibc(): TunLib {
  const c = libc();
  const errno = () => read.i32(c.__errno_location()!, 0);
  const pollfd = new Uint8Array(8);
  const pollView = new DataView(pollfd.buffer);
  return {
    gro: false,
    tun_open(name, outName) {
      const fd = c.open(Buffer.from("/dev/net/tun\0"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
      if (fd < 0) return -errno();
      const ifr = new Uint8Array(40);
      ifr.set(name.subarray(0, Math.min(15, name.indexOf(0) < 0 ? name.length : name.indexOf(0))));
      new DataView(ifr.buffer).setInt16(16, IFF_TUN | IFF_NO_PI, true);
      if (c.ioctl(fd, TUNSETIFF, ifr) < 0) {
        const e = errno();
        c.close(fd);
        return -e;
      }
      outName.set(ifr.subarray(0, 16));
      return fd;
    },
    tun_read_batch(fd, buf, stride, lens, max, timeoutMs) {
      pollView.setInt32(0, fd, true);
      pollView.setInt16(4, POLLIN, true);
      pollView.setInt16(6, 0, true);
      const r = c.poll(pollfd, 1, timeoutMs);
      if (r < 0) return errno() === EINTR ? 0 : -errno();
      if (r === 0) return 0;
      let n = 0;
      const lensView = new Int32Array(toArrayBuffer(lens, 0, max * 4));
      while (n < max) {
        const got = Number(c.read(fd, (Number(buf) + n * stride) as Pointer, stride));
        if (got < 0) {
          const e = errno();
          if (e === EAGAIN || e === EINTR || n > 0) break;
          return -e;
        }
        lensView[n++] = got;
      }
      return n;
    },
    tun_write(fd, b, len) {
      const r = Number(c.write(fd, b, len));
      return r < 0 ? -errno() : r;
    },
    tun_close(fd) {
      return c.close(fd) < 0 ? -errno() : 0;
    },
  };
}


let lib: TunLib | undefined;
/** Which implementation this thread uses: "cc" (ffi/tun.c) or "libc" (the fallback). */
export let tunLibKind: "cc" | "libc" | undefined;

/** The helper's functions, made once per thread. Set TRELLIS_TUN_FFI=libc to skip TinyCC. */
export function tunLib(): TunLib {
  if (lib) return lib;
  if (process.env.TRELLIS_TUN_FFI !== "libc") {
    try {
      lib = compile();
      tunLibKind = "cc";
      return lib;
    } catch {
      // TinyCC could not build or link the helper here; use libc directly.
    }
  }
  lib = viaLibc();
  tunLibKind = "libc";
  return lib;
}

