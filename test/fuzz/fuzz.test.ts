// Fuzzing in every CI run: each decoder and entry point that takes network bytes gets a fixed-seed
// stream of mutants (see targets.ts); each must be accepted or refused with its typed error, never
// throw anything else, never take more than SLOW_INPUT_MS of CPU on one input, never grow the heap by much.
// Longer runs: FUZZ_SCALE=N multiplies every count; FUZZ_LONG=1 gives each target 10^6 inputs (fewer
// where each costs an ML-DSA verification or a KEM decapsulation: see longCount in targets.ts).
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { runTarget, type FuzzResult } from "./mutate.ts";
import { targets } from "./targets.ts";

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const LONG = process.env.FUZZ_LONG === "1";
const SEED = Number(process.env.FUZZ_SEED ?? 0x7e11_15);
/** Heap a target may keep after its run (caches with caps are fine; a leak per input is not). */
const MAX_HEAP_GROWTH_MB = 64;
setDefaultTimeout(LONG ? 3_600_000 : Math.max(60_000, 60_000 * SCALE));

const results: FuzzResult[] = [];

describe("fuzz: network decoders and entry points", () => {
  const all = targets();
  all.forEach((t, i) => {
    test(t.name, () => {
      const r = runTarget(t, SEED + i, LONG ? (t.longCount ?? 1_000_000) : Math.round(t.count * SCALE));
      results.push(r);
      expect(r.failures).toEqual([]);
      expect(r.heapGrowthMb).toBeLessThan(MAX_HEAP_GROWTH_MB);
    });
  });
});

afterAll(() => {
  const total = results.reduce((n, r) => n + r.inputs, 0);
  const ms = results.reduce((n, r) => n + r.ms, 0);
  const w = Math.max(...results.map((r) => r.name.length));
  const lines = results.map((r) => `  ${r.name.padEnd(w)}  ${String(r.inputs).padStart(8)} inputs  ${String(r.refused).padStart(7)} refused (typed)  ${(r.ms / 1000).toFixed(1).padStart(6)} s  max ${r.maxInputMs.toFixed(1).padStart(6)} ms CPU/input  heap ${r.heapGrowthMb >= 0 ? "+" : ""}${r.heapGrowthMb.toFixed(1)} MB`);
  console.log(`fuzz (seed ${SEED}, ${LONG ? "long run" : `scale ${SCALE}`}): ${total} inputs over ${results.length} targets in ${(ms / 1000).toFixed(1)} s\n${lines.join("\n")}`);
});
