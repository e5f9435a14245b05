// An eventfd through libc (bun:ffi dlopen), and poll() on a TUN fd and that eventfd together: how the
// single TUN worker (./duplex-worker.ts) sleeps until the device has packets or the node has some to
// write, whichever comes first. Each thread calls wakeLib() for its own binding.
import { dlopen, FFIType } from "bun:ffi";
import type { BatchSlotsInit } from "./batch.ts";

/** Int32 words shared with the node (./linux.ts), over `words`. */
export const W = {
  /** 1: stop. */
  STOP: 0,
  /** Batches posted and not yet handled by the node (it subtracts). */
  INFLIGHT: 1,
  /** 1 while the worker sleeps without watching the device because INFLIGHT is at its bound. */
  FULL: 2,
  /** 1 once the node takes packets (onPackets): before that the device is not read. */
  READING: 3,
  /** 1 while the worker sleeps in poll(): the node writes the eventfd to wake it. */
  SLEEPING: 4,
} as const;
export const DUPLEX_WORDS = 5;

export interface DuplexStart {
  fd: number;
  efd: number;
  words: SharedArrayBuffer;
  ring: SharedArrayBuffer;
  /** Int32 words: [1] packets the device refused; [2] packets CoDel dropped (as the writer's). */
  control: SharedArrayBuffer;
  vnet: boolean;
  /** The slots to read into (./batch.ts); as many batches in flight as there are slots. */
  slots: BatchSlotsInit;
  tso: boolean;
}

const EFD_NONBLOCK = 0o4000, EFD_CLOEXEC = 0o2000000, POLLIN = 1;
const LIBC_NAMES = ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, `/lib/ld-musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, "libc.so"];

export interface WakeLib {
  /** A new non-blocking eventfd, or -1. */
  open(): number;
  /** Make the eventfd readable (wakes a poll() on it). */
  wake(fd: number): void;
  /** Empty the eventfd's counter. */
  drain(fd: number): void;
  close(fd: number): void;
  /**
   * poll() on `tun` (skipped when `watchTun` is false) and `efd` for up to `timeoutMs`: bit 1 set when the
   * TUN has packets, bit 2 when the eventfd was woken; 0 on time-out or EINTR.
   */
  wait(tun: number, watchTun: boolean, efd: number, timeoutMs: number): number;
}

let lib: WakeLib | undefined;
export function wakeLib(): WakeLib {
  if (lib) return lib;
  let c;
  for (const name of LIBC_NAMES) {
    try {
      c = dlopen(name, {
        eventfd: { args: [FFIType.u32, FFIType.i32], returns: FFIType.i32 },
        write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
        read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
        poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
        close: { args: [FFIType.i32], returns: FFIType.i32 },
      }).symbols;
      break;
    } catch {}
  }
  if (!c) throw new Error("cannot load libc for the TUN worker's eventfd");
  // Passed as typed arrays, so the pointer is taken at each call: one taken once with ptr() can go stale
  // when the engine moves a small array's storage (./writer-worker.ts saw it).
  const one = new BigUint64Array([1n]), sink = new BigUint64Array(1);
  // struct pollfd { int fd; short events; short revents; } x 2
  const fds = new Int32Array(4), shorts = new Int16Array(fds.buffer);
  const sys = c;
  lib = {
    open: () => sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
    wake: (fd) => void sys.write(fd, one, 8),
    drain: (fd) => void sys.read(fd, sink, 8),
    close: (fd) => void sys.close(fd),
    wait(tun, watchTun, efd, timeoutMs) {
      fds[0] = watchTun ? tun : -1; // a negative fd is ignored by poll()
      shorts[2] = POLLIN;
      shorts[3] = 0;
      fds[2] = efd;
      shorts[6] = POLLIN;
      shorts[7] = 0;
      if (sys.poll(fds, 2, timeoutMs) <= 0) return 0;
      return (shorts[3] !== 0 ? 1 : 0) | (shorts[7] !== 0 ? 2 : 0);
    },
  };
  return lib;
}
