// `bun bench/memory-edge.ts` (root: namespaces): an edge's idle memory, one variant against another.
// A relay (also the seed) in a namespace and, per run and variant, a fresh edge linked to it; once the
// link is up and the edge has settled: its RSS split as the kernel counts it (anonymous: heaps, stacks;
// file-backed: the executable's and libraries' pages; shared), its threads and its CPU over an idle
// window. Variants alternate run by run (the machine's load hits them alike); the table gives medians.
// A variant is `label|binary|ENV=value ENV=value` (binary "" or "src": the source through Bun);
// without --variant: the source as it is. Flags: --variant (repeat), --runs 3, --settle 10, --window 10.
// Example: bun bench/memory-edge.ts --variant 'bytecode|/tmp/a/trellis-linux-x64|' --variant 'gc|/tmp/a/trellis-linux-x64|BUN_JSC_smallHeapGrowthFactor=1.3'
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { TestNet } from "../test/lib/netns.ts";
import { TestNode, tempDir, waitFor } from "../test/lib/nodes.ts";

const { values } = parseArgs({
  options: {
    variant: { type: "string", multiple: true, default: ["source||"] },
    runs: { type: "string", default: "3" },
    settle: { type: "string", default: "10" },
    window: { type: "string", default: "10" },
    /** Heap statistics of each source-run edge (bench/heap-preload.ts) into this directory, after the sample. */
    heap: { type: "string" },
  },
});
const runs = Number(values.runs), settleMs = Number(values.settle) * 1000, windowS = Number(values.window);
const variants = values.variant!.map((v) => {
  const [label, bin = "", env = ""] = v.split("|");
  return { label, bin: bin === "src" ? "" : bin, env: env.split(/\s+/).filter(Boolean) };
});

interface Sample { rss: number; anon: number; file: number; shmem: number; threads: number; cpu: number; upS: number }
function status(pid: number): Omit<Sample, "cpu" | "upS"> & { ticks: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) / 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile"), shmem: kb("RssShmem"), threads: kb("Threads") * 1024, ticks: Number(stat[11]) + Number(stat[12]) };
}

const dir = tempDir("bench-edge");
const net = new TestNet("me");
const nodes: TestNode[] = [];
const relayBin = process.env.TRELLIS_BIN;
let cleaning: Promise<void> | undefined;
const cleanup = () => (cleaning ??= (async () => {
  for (const n of nodes) if (n.pid) await n.stop().catch(() => {});
  net.destroy();
  rmSync(dir, { recursive: true, force: true });
})());
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void cleanup().then(() => process.exit(130)));
try {
  net.addHost("relay");
  const seed = `http://${net.host("relay").ip}:7443`;
  const relay = new TestNode(net, { host: "relay", name: "relay", relay: true, seeds: [seed] }, dir);
  nodes.push(relay);
  const edges: TestNode[][] = variants.map((_, v) =>
    Array.from({ length: runs }, (_, r) => {
      net.addHost(`e${v}r${r}`);
      const e = new TestNode(net, { host: `e${v}r${r}`, name: `e${v}r${r}`, seeds: [seed], allow: [relay.id], wrap: variants[v].env.length ? ["env", ...variants[v].env] : undefined, preload: values.heap && !variants[v].bin ? join(import.meta.dir, "heap-preload.ts") : undefined }, dir);
      nodes.push(e);
      return e;
    }));
  relay.spec.allow = edges.flat().map((e) => e.id);
  relay.writeConfig();
  // Both at info, as deployed (the test default is debug).
  for (const n of nodes) writeFileSync(n.configPath, readFileSync(n.configPath, "utf8").replace('log_level = "debug"', 'log_level = "info"'));
  await relay.start();
  const samples: Sample[][] = variants.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (let v = 0; v < variants.length; v++) {
      const e = edges[v][r];
      if (variants[v].bin) process.env.TRELLIS_BIN = variants[v].bin;
      else delete process.env.TRELLIS_BIN;
      const t0 = performance.now();
      await e.start();
      await waitFor(`${e.spec.name} linked`, () => e.api("/v1/status").links.some((l: { alive: boolean }) => l.alive), 60_000);
      const upS = (performance.now() - t0) / 1000;
      await Bun.sleep(settleMs);
      const s0 = status(e.pid!);
      await Bun.sleep(windowS * 1000);
      const s1 = status(e.pid!);
      const s = { ...s1, cpu: (s1.ticks - s0.ticks) / windowS, upS };
      samples[v].push(s);
      console.log(`run ${r + 1} ${variants[v].label.padEnd(16)} RSS ${s.rss.toFixed(1)} MB (anon ${s.anon.toFixed(1)}, file ${s.file.toFixed(1)}, shmem ${s.shmem.toFixed(1)}), ${s.threads} threads, CPU ${s.cpu.toFixed(2)}%, linked in ${upS.toFixed(1)} s`);
      // TRELLIS_SMAPS_DIR: keep each edge's /proc/PID/smaps there, to see which mappings hold the memory.
      if (values.heap && !variants[v].bin) {
        const out = join(e.dir, "state", "heap.json");
        process.kill(e.pid!, "SIGUSR2");
        await waitFor("heap statistics", () => existsSync(out), 20_000);
        await Bun.sleep(500);
        copyFileSync(out, join(values.heap, `${variants[v].label}-${r + 1}.json`));
      }
      if (process.env.TRELLIS_SMAPS_DIR) writeFileSync(`${process.env.TRELLIS_SMAPS_DIR}/${variants[v].label}-${r + 1}.smaps`, readFileSync(`/proc/${e.pid}/smaps`));
      await e.stop();
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`\n| variant | RSS MB (median of ${runs}) | anon | file | shmem | threads | idle CPU % | runs' RSS |`);
  console.log("|---|---|---|---|---|---|---|---|");
  variants.forEach((v, i) => {
    const ss = samples[i], m = (k: keyof Sample) => med(ss.map((s) => s[k]));
    console.log(`| ${v.label} | ${m("rss").toFixed(1)} | ${m("anon").toFixed(1)} | ${m("file").toFixed(1)} | ${m("shmem").toFixed(1)} | ${m("threads")} | ${m("cpu").toFixed(2)} | ${ss.map((s) => s.rss.toFixed(1)).join(" ")} |`);
  });
  console.log(`(relay: ${relayBin ?? "source"}; load average ${loadavg().map((x) => x.toFixed(1)).join(" ")})`);
} finally {
  await cleanup();
}
