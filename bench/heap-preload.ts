// Preloaded into a node by bench/peers-load.ts: on SIGUSR2 it writes the JavaScript heap's statistics
// (bun:jsc heapStats: sizes and object counts by type) and process.memoryUsage() to $TRELLIS_HEAP_OUT,
// or to heap.json beside the config it was started with.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { heapStats } from "bun:jsc";

const at = process.argv.indexOf("--config");
const out = process.env.TRELLIS_HEAP_OUT ?? join(at > 0 ? dirname(process.argv[at + 1]) : ".", "state", "heap.json");
process.on("SIGUSR2", () => {
  Bun.gc(true);
  try {
    writeFileSync(out, JSON.stringify({ heap: heapStats(), memory: process.memoryUsage() }));
  } catch (e) {
    console.error(`heap stats not written to ${out}: ${(e as Error).message}`);
  }
});
