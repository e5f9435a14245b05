// `bun run build`: one self-contained binary per target with `bun build --compile`, and dist/SHA256SUMS.
//
// Cross-builds work offline from the npm registry: each target's Bun runtime is the matching
// @oven/bun-linux-* package (fetched with `npm pack` into node_modules/.cache when npm did not
// install it for this machine) and passed with --compile-executable-path.
// Entrypoints: the CLI and the TUN reader worker. Bun embeds them under their common root (src/),
// which is where src/tun/linux.ts looks for the worker in a binary.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const ROOT = resolve(import.meta.dir, "..");
const DIST = join(ROOT, "dist");
const CACHE = join(ROOT, "node_modules/.cache/trellis-runtimes");
const ENTRYPOINTS = ["src/cli/main.ts", "src/tun/reader-worker.ts"];

interface Target {
  name: string; // dist/trellis-<name>
  bunTarget: string;
  pkg: string; // npm package holding that target's bun runtime
}
const TARGETS: Record<string, Target> = {
  x64: { name: "linux-x64", bunTarget: "bun-linux-x64", pkg: "@oven/bun-linux-x64" },
  arm64: { name: "linux-arm64", bunTarget: "bun-linux-arm64", pkg: "@oven/bun-linux-aarch64" },
  "x64-musl": { name: "linux-x64-musl", bunTarget: "bun-linux-x64-musl", pkg: "@oven/bun-linux-x64-musl" },
  "arm64-musl": { name: "linux-arm64-musl", bunTarget: "bun-linux-arm64-musl", pkg: "@oven/bun-linux-aarch64-musl" },
};

function run(cmd: string[], cwd = ROOT): string {
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** The path of `pkg`'s bun binary for the running Bun version, fetched from the npm registry if needed. */
function runtime(pkg: string): string {
  const installed = join(ROOT, "node_modules", pkg, "bin/bun");
  const version = Bun.version;
  if (existsSync(installed) && JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version === version) return installed;
  const dir = join(CACHE, `${pkg.replace("/", "__")}-${version}`);
  const bin = join(dir, "package/bin/bun");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tgz = run(["npm", "pack", `${pkg}@${version}`, "--pack-destination", dir, "--silent"]).trim().split("\n").pop()!;
  run(["tar", "-xzf", join(dir, tgz), "-C", dir]);
  if (!existsSync(bin)) throw new Error(`${pkg}@${version}: no bin/bun in the package`);
  return bin;
}

const { values } = parseArgs({ options: { target: { type: "string", default: "all" } } });
const names = values.target === "all" ? Object.keys(TARGETS) : values.target!.split(",");
for (const n of names) if (!TARGETS[n]) throw new Error(`unknown --target ${n} (known: ${Object.keys(TARGETS).join(", ")}, all)`);
for (const e of ENTRYPOINTS) if (!existsSync(join(ROOT, e))) throw new Error(`entrypoint ${e} is missing`);

mkdirSync(DIST, { recursive: true });
const sums: string[] = [];
for (const n of names) {
  const t = TARGETS[n];
  const out = join(DIST, `trellis-${t.name}`);
  const started = performance.now();
  run([process.execPath, "build", "--compile", `--target=${t.bunTarget}`, `--compile-executable-path=${runtime(t.pkg)}`, ...ENTRYPOINTS, "--outfile", out]);
  const size = statSync(out).size;
  console.log(`built ${out.slice(ROOT.length + 1)}  ${(size / 1e6).toFixed(1)} MB  in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
// The installer and the files it installs beside the binary ship in the release directory too.
const EXTRAS: [string, string][] = [["install/install.sh", "install.sh"], ["config/trellis.toml", "trellis.toml"], ["install/trellis.service", "trellis.service"], ["install/trellis.init", "trellis.init"]];
for (const [from, to] of EXTRAS) writeFileSync(join(DIST, to), readFileSync(join(ROOT, from)));
// SHA256SUMS covers every binary and file in dist/, in `sha256sum -c` format.
const files = [...Object.values(TARGETS).map((t) => `trellis-${t.name}`), ...EXTRAS.map(([, to]) => to)];
for (const f of files) {
  const path = join(DIST, f);
  if (existsSync(path)) sums.push(`${createHash("sha256").update(readFileSync(path)).digest("hex")}  ${f}`);
}
writeFileSync(join(DIST, "SHA256SUMS"), sums.join("\n") + "\n");
console.log(`wrote dist/SHA256SUMS (${sums.length} files)`);
