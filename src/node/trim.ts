// Giving back the executable's pages that start-up touched and idle does not use. The Bun binary's code
// is ~90 MB; start-up (module loading, the first link's set-up) touches about 40 MB of it, and the kernel
// maps each page it faults in with its neighbours, so an idle edge counted ~56 MB of the file in its RSS
// of which it uses about half. madvise(MADV_DONTNEED) on the executable's read-only, never-written
// mappings takes them out of this process's page tables; they stay in the page cache, so what is
// still used comes back at the next touch with a minor fault (no I/O), and what is not waits there as
// cache the kernel frees first. Only mappings of the executable file that hold no private (copied)
// page qualify: discarding those would lose data; a read-only mapping with none has the file's bytes.
// Measured on an idle x64 edge with one relay link (bench/memory-edge.ts, medians of 3): RSS 87.8 →
// 68.0 MB, the file-backed part 56.9 → 35.9 MB, idle CPU unchanged. A full garbage collection with it
// (Bun.gc(true)) gained ~0.6 MB, within the runs' spread: not done. TRELLIS_TRIM=0 turns it off.
import { dlopen, FFIType } from "bun:ffi";
import { readFileSync, readlinkSync } from "node:fs";

const MADV_DONTNEED = 4;
/** First trim after start-up (the first links are set up by then), then every TRIM_EVERY_MS. */
const TRIM_FIRST_MS = 20_000;
const TRIM_EVERY_MS = 5 * 60_000;

export interface Mapping {
  start: number;
  end: number;
}

/**
 * The executable's mappings (from /proc/self/smaps text) that can be dropped and read back from the file:
 * not writable and holding no anonymous (private, copied-on-write) page.
 */
export function droppable(smaps: string, exe: string): Mapping[] {
  const out: Mapping[] = [];
  let cur: (Mapping & { ok: boolean }) | undefined;
  const flush = () => cur?.ok && out.push({ start: cur.start, end: cur.end });
  for (const line of smaps.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      flush();
      const [, a, b, perm, path] = head;
      cur = { start: parseInt(a, 16), end: parseInt(b, 16), ok: path === exe && perm[0] === "r" && perm[1] === "-" };
      continue;
    }
    // Anonymous: pages of this mapping copied on write (relocations made read-only after): never drop them.
    const anon = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (anon && cur && Number(anon[1]) > 0) cur.ok = false;
  }
  flush();
  return out;
}

let lib: { madvise(addr: bigint, len: bigint, advice: number): number } | null | undefined;
function madvise(): typeof lib {
  if (lib !== undefined) return lib;
  lib = null;
  const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  for (const name of ["libc.so.6", `libc.musl-${arch}.so.1`, `/lib/ld-musl-${arch}.so.1`, "libc.so"]) {
    try {
      lib = dlopen(name, { madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 } }).symbols;
      break;
    } catch {}
  }
  return lib;
}

/** Drop the executable's droppable pages from this process now: the bytes dropped (RSS before the next touch). */
export function trimExecutable(): number {
  const m = madvise();
  if (!m) return 0;
  let exe: string, smaps: string;
  try {
    exe = readlinkSync("/proc/self/exe");
    smaps = readFileSync("/proc/self/smaps", "latin1");
  } catch {
    return 0;
  }
  let bytes = 0;
  for (const r of droppable(smaps, exe)) if (m.madvise(BigInt(r.start), BigInt(r.end - r.start), MADV_DONTNEED) === 0) bytes += r.end - r.start;
  return bytes;
}

/** Trim after start-up and then now and again, for as long as the process runs (the timers do not keep it alive). */
export function scheduleTrim(): void {
  if (process.env.TRELLIS_TRIM === "0" || process.platform !== "linux") return;
  setTimeout(trimExecutable, TRIM_FIRST_MS).unref();
  setInterval(trimExecutable, TRIM_EVERY_MS).unref();
}
