// Preloaded into a node by bench/peers-load.ts: on SIGUSR2 it writes the JavaScript heap's statistics
// (bun:jsc heapStats: sizes and object counts by type), the shallow bytes by type from a heap snapshot
// and process.memoryUsage() to $TRELLIS_HEAP_OUT, or to heap.json beside the config it was started with.
// On SIGUSR1 it starts JavaScriptCore's sampling profiler, whose report (self samples by function and
// bytecode) goes to $TRELLIS_IDLE_PROF when the process exits (at the second SIGUSR1): a profile of the
// window between the two signals (an idle window), without the set-up before it, which `bun --cpu-prof-md`
// would include.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gcAndSweep, heapStats, startSamplingProfiler } from "bun:jsc";

const at = process.argv.indexOf("--config");
const out = process.env.TRELLIS_HEAP_OUT ?? join(at > 0 ? dirname(process.argv[at + 1]) : ".", "state", "heap.json");

/** Shallow bytes and counts by class name, from JSC's heap snapshot (nodes: id, size, class, flags[, label]). */
export function bytesByType(): Record<string, { bytes: number; count: number }> {
  const snap = Bun.generateHeapSnapshot() as unknown as { nodes: number[]; nodeClassNames: string[]; edges?: number[]; labels?: string[] };
  const fields = snap.labels ? 5 : 4;
  const by: Record<string, { bytes: number; count: number }> = {};
  for (let i = 0; i + fields <= snap.nodes.length; i += fields) {
    const name = snap.nodeClassNames[snap.nodes[i + 2]] ?? "?";
    const e = (by[name] ??= { bytes: 0, count: 0 });
    e.bytes += snap.nodes[i + 1];
    e.count++;
  }
  return by;
}

process.on("SIGUSR2", () => {
  Bun.gc(true);
  try {
    const heap = heapStats(), memory = process.memoryUsage();
    // Then with every block swept (empty ones go back), and after Bun.shrink(): what of the capacity comes back.
    gcAndSweep();
    const swept = { heapCapacity: heapStats().heapCapacity, rss: process.memoryUsage().rss };
    (Bun as unknown as { shrink(): void }).shrink();
    const shrunk = { heapCapacity: heapStats().heapCapacity, rss: process.memoryUsage().rss };
    writeFileSync(out, JSON.stringify({ heap, memory, swept, shrunk, bytes: bytesByType() }));
    // The whole snapshot too, for retainer paths (large: tens of MB with hundreds of peers).
    if (process.env.TRELLIS_HEAP_SNAPSHOT) writeFileSync(`${out}.snapshot`, JSON.stringify(Bun.generateHeapSnapshot()));
  } catch (e) {
    console.error(`heap stats not written to ${out}: ${(e as Error).message}`);
  }
});

let profiling = false;
process.on("SIGUSR1", () => {
  if (!process.env.TRELLIS_IDLE_PROF) return;
  // The second signal ends the window: exit now, so that the report covers the window alone.
  if (profiling) process.exit(0);
  startSamplingProfiler(process.env.TRELLIS_IDLE_PROF);
  profiling = true;
});

// --idle-prof: count the signatures made and checked from SIGUSR1 on, by purpose and caller (what an idle
// relay signs and verifies), written beside the profile at exit. src/identity/identity.ts encodes the
// signature's context string ("trellis record v1", ...) on every sign() and verify(): that call is counted.
if (process.env.TRELLIS_IDLE_PROF) {
  const dir = process.env.TRELLIS_IDLE_PROF;
  let counting = false;
  const counts = new Map<string, number>();
  const encode = TextEncoder.prototype.encode;
  TextEncoder.prototype.encode = function (this: TextEncoder, input?: string) {
    if (counting && typeof input === "string" && input.startsWith("trellis ")) {
      const where = (new Error().stack ?? "").split("\n").slice(2, 6).map((l) => l.trim().replace(/^at /, "").replace(/\(?\/\S*\/(src|node_modules)\//, "$1/").replace(/\)$/, "")).join(" < ");
      const k = `${input}\t${where}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return encode.call(this, input);
  };
  process.on("SIGUSR1", () => (counting = true));
  process.on("exit", () => writeFileSync(join(dir, `signatures-${process.pid}.txt`), [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n}\t${k}`).join("\n") + "\n"));
}
