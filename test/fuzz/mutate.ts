// Fuzzing machinery: a seeded PRNG, byte mutators in the style of AFL/libFuzzer, and a runner that
// checks each input is accepted or refused with a typed error, none hangs, and memory stays bounded.
import { rng } from "../../src/sim/clock.ts";

/** The simulation's seeded PRNG (mulberry32): the same seed gives the same inputs on every run. */
export const prng = rng;

const INTERESTING8 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xca];
const INTERESTING16 = [0, 1, 0x7fff, 0x8000, 0xffff, 0x0100, 1200, 1500, 16384, 65535];
const INTERESTING32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x01000000, 3309, 1952];

export class Mutator {
  readonly random: () => number;
  constructor(seed: number, private readonly seeds: Uint8Array[], private readonly maxLen = 70_000) {
    this.random = prng(seed);
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** One mutant: a seed with 1–4 stacked mutations (or, now and then, random bytes). */
  next(): Uint8Array {
    if (this.random() < 0.02) return this.bytes(this.int(64));
    let b: Uint8Array = Uint8Array.from(this.pick(this.seeds));
    const rounds = 1 + this.int(4);
    for (let i = 0; i < rounds; i++) b = this.once(b);
    return b.length > this.maxLen ? b.subarray(0, this.maxLen) : b;
  }

  private once(b: Uint8Array): Uint8Array {
    const n = b.length;
    const at = () => this.int(Math.max(1, n));
    switch (this.int(n === 0 ? 3 : 11)) {
      case 0: // append random bytes
        return concat(b, this.bytes(1 + this.int(32)));
      case 1: // splice: a prefix of this with a suffix of another seed
        {
          const o = this.pick(this.seeds);
          return concat(b.subarray(0, this.int(n + 1)), o.subarray(this.int(o.length + 1)));
        }
      case 2: // insert random bytes
        {
          const p = this.int(n + 1);
          return concat(b.subarray(0, p), this.bytes(1 + this.int(16)), b.subarray(p));
        }
      case 3: // flip a bit
        b[at()] ^= 1 << this.int(8);
        return b;
      case 4: // a random byte
        b[at()] = this.int(256);
        return b;
      case 5: // an interesting byte
        b[at()] = this.pick(INTERESTING8);
        return b;
      case 6: // an interesting 16-bit value, either byte order
        {
          const p = this.int(Math.max(1, n - 1));
          const v = this.pick(INTERESTING16);
          if (p + 1 < n) new DataView(b.buffer, b.byteOffset).setUint16(p, v, this.random() < 0.5);
          return b;
        }
      case 7: // an interesting 32-bit value
        {
          const p = this.int(Math.max(1, n - 3));
          const v = this.pick(INTERESTING32);
          if (p + 3 < n) new DataView(b.buffer, b.byteOffset).setUint32(p, v >>> 0, this.random() < 0.5);
          return b;
        }
      case 8: // truncate
        return b.subarray(0, this.int(n));
      case 9: // delete a range
        {
          const p = this.int(n);
          return concat(b.subarray(0, p), b.subarray(Math.min(n, p + 1 + this.int(32))));
        }
      default: // duplicate a range
        {
          const p = this.int(n);
          const q = Math.min(n, p + 1 + this.int(64));
          return concat(b.subarray(0, q), b.subarray(p, q), b.subarray(q));
        }
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

type ErrorClass = abstract new (...args: never[]) => Error;

export interface Target {
  name: string;
  /** Valid inputs to start from (encoded by the real encoders). */
  seeds: Uint8Array[];
  /** Mutants per CI run (multiplied by FUZZ_SCALE). */
  count: number;
  /** Mutants in the long run (FUZZ_LONG=1): 10^6 unless each input costs a signature check or a KEM. */
  longCount?: number;
  /** Feed one input to the decoder or entry point; a returned string counts as a refusal. */
  run(b: Uint8Array): unknown;
  /** The only errors it may throw (none: it must return for every input). */
  allowed?: ErrorClass[];
  /** Called once after the run (close sockets, timers). */
  done?(): void;
}

export interface FuzzResult {
  name: string;
  inputs: number;
  refused: number;
  /** Wall time of the run. */
  ms: number;
  /** The most CPU time one input took. */
  maxInputMs: number;
  heapGrowthMb: number;
  failures: string[];
}

/**
 * A single input that takes more CPU than this is a hang. CPU time (getrusage), not wall time: on a
 * loaded CI machine the process may wait seconds for a core without any input being slow.
 */
export const SLOW_INPUT_MS = 1000;

/** This process's CPU time in ms (all threads: a GC pause counts against the input it interrupted). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Run `t` on `count` mutants from a fixed seed; collect anything that is not a typed refusal. */
export function runTarget(t: Target, seed: number, count: number): FuzzResult {
  const m = new Mutator(seed, t.seeds);
  const allowed = t.allowed ?? [];
  const failures: string[] = [];
  let refused = 0;
  let maxInputMs = 0;
  Bun.gc(true);
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  // The seeds themselves first: they must pass (or be refused typed) too.
  const inputs = [...t.seeds];
  for (let i = 0; i < count; i++) {
    const b = i < inputs.length ? inputs[i] : m.next();
    const s = cpuMs();
    try {
      // A decoder that answers with a reason string (decodeRecord) refused the input.
      if (typeof t.run(b) === "string") refused++;
    } catch (e) {
      if (allowed.some((c) => e instanceof c)) refused++;
      else if (failures.length < 5) failures.push(`${(e as Error)?.constructor?.name}: ${(e as Error)?.message} on input ${Buffer.from(b.subarray(0, 96)).toString("hex")}${b.length > 96 ? `… (${b.length} bytes)` : ""}`);
    }
    const d = cpuMs() - s;
    if (d > maxInputMs) maxInputMs = d;
    if (d > SLOW_INPUT_MS && failures.length < 5) failures.push(`input took ${d.toFixed(0)} ms of CPU: ${Buffer.from(b.subarray(0, 96)).toString("hex")}`);
  }
  const ms = performance.now() - t0;
  t.done?.();
  Bun.gc(true);
  const heapGrowthMb = (process.memoryUsage().heapUsed - heap0) / 1e6;
  return { name: t.name, inputs: count, refused, ms, maxInputMs, heapGrowthMb, failures };
}
