// `bun run build [-- --target x64|arm64|x64-musl|arm64-musl|all|a,b] [--out DIR]`: one self-contained binary per target, and dist/SHA256SUMS
// (or DIR/SHA256SUMS: the tests build into a temporary directory, never into the checkout).
//
// Cross-builds work offline: the running Bun is the runtime for its own target, and every other
// target's runtime is the matching @oven/bun-linux-* package of the same version (npm installs only
// the host's, since the others declare another cpu/libc, so it is fetched once with `npm pack` into
// node_modules/.cache) and passed with --compile-executable-path.
// Entrypoints: the CLI and the TUN reader worker (a Worker in a binary must be an entrypoint of its
// own). Bun embeds them under their common root (src/), which is where src/tun/linux.ts looks for the
// worker in a binary. --bytecode: `trellis version` starts in ~16 ms instead of ~75 ms, for ~5 MB.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { x509StubPlugin } from "../src/tether/x509stub.ts";

const ROOT = resolve(import.meta.dir, "..");
const CACHE = join(ROOT, "node_modules/.cache/trellis-runtimes");

/** An entrypoint is required when `expectedBy` mentions it (a worker that code loads); otherwise optional. */
const ENTRYPOINTS: { path: string; expectedBy?: { file: string; mention: string } }[] = [
  { path: "src/cli/main.ts" },
  { path: "src/tun/reader-worker.ts", expectedBy: { file: "src/tun/linux.ts", mention: "reader-worker.ts" } },
  { path: "src/tun/writer-worker.ts", expectedBy: { file: "src/tun/linux.ts", mention: "writer-worker.ts" } },
  { path: "src/tun/duplex-worker.ts", expectedBy: { file: "src/tun/linux.ts", mention: "duplex-worker.ts" } },
];

interface Target {
  name: string; // dist/trellis-<name>
  bunTarget: string;
  pkg: string; // npm package holding that target's bun runtime
  host: boolean; // the running Bun is this target's runtime
}
const hostMusl = process.platform === "linux" && existsSync(`/lib/ld-musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`) && !existsSync("/lib64/ld-linux-x86-64.so.2") && !existsSync("/lib/ld-linux-aarch64.so.1");
const target = (arch: "x64" | "arm64", musl: boolean): Target => ({
  name: `linux-${arch}${musl ? "-musl" : ""}`,
  bunTarget: `bun-linux-${arch}${musl ? "-musl" : ""}`,
  pkg: `@oven/bun-linux-${arch === "x64" ? "x64" : "aarch64"}${musl ? "-musl" : ""}`,
  host: process.platform === "linux" && process.arch === arch && hostMusl === musl,
});
const TARGETS: Record<string, Target> = {
  x64: target("x64", false),
  arm64: target("arm64", false),
  "x64-musl": target("x64", true),
  "arm64-musl": target("arm64", true),
};

function run(cmd: string[], cwd = ROOT): string {
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} failed: ${(r.stderr || r.stdout || String(r.error)).trim()}`);
  return r.stdout;
}

/** The path of `t`'s bun runtime for the running Bun version, fetched from the npm registry once if needed. */
function runtime(t: Target): string {
  const version = Bun.version;
  if (t.host) return process.execPath;
  const installed = join(ROOT, "node_modules", t.pkg);
  if (existsSync(join(installed, "bin/bun")) && JSON.parse(readFileSync(join(installed, "package.json"), "utf8")).version === version) return join(installed, "bin/bun");
  const dir = join(CACHE, `${t.pkg.replace("/", "__")}-${version}`);
  const bin = join(dir, "package/bin/bun");
  if (existsSync(bin)) return bin;
  console.log(`fetching ${t.pkg}@${version} from the npm registry (once; cached in ${dir.slice(ROOT.length + 1)})`);
  mkdirSync(dir, { recursive: true });
  const tgz = run(["npm", "pack", `${t.pkg}@${version}`, "--pack-destination", dir, "--silent"]).trim().split("\n").pop()!;
  run(["tar", "-xzf", join(dir, tgz), "-C", dir]);
  if (!existsSync(bin)) throw new Error(`${t.pkg}@${version}: no bin/bun in the package`);
  return bin;
}

function entrypoints(): string[] {
  const out: string[] = [];
  for (const e of ENTRYPOINTS) {
    if (existsSync(join(ROOT, e.path))) { out.push(e.path); continue; }
    const by = e.expectedBy;
    const expected = !by || (existsSync(join(ROOT, by.file)) && readFileSync(join(ROOT, by.file), "utf8").includes(by.mention));
    if (expected) throw new Error(`entrypoint ${e.path} is missing${by ? `, but ${by.file} loads it` : ""}: the binary would fail at run time`);
    console.log(`note: ${e.path} does not exist and nothing loads it yet: left out`);
  }
  return out;
}

const { values } = parseArgs({ options: { target: { type: "string", default: "all" }, out: { type: "string" } } });
const DIST = values.out ? resolve(values.out) : join(ROOT, "dist");
const names = values.target === "all" ? Object.keys(TARGETS) : values.target!.split(",").map((s) => s.trim());
for (const n of names) if (!TARGETS[n]) throw new Error(`unknown --target ${n} (known: ${Object.keys(TARGETS).join(", ")}, all; or a comma-separated list)`);
const entries = entrypoints();

mkdirSync(DIST, { recursive: true });
for (const n of names) {
  const t = TARGETS[n];
  const out = join(DIST, `trellis-${t.name}`);
  const started = performance.now();
  // Build beside the old binary and rename over it: an interrupted build never leaves half a file.
  // Through Bun.build rather than `bun build`: @peculiar/x509 is replaced by its stub (src/tether/x509stub.ts).
  const built = await Bun.build({
    entrypoints: entries.map((e) => join(ROOT, e)),
    compile: { target: t.bunTarget as Bun.Build.CompileTarget, executablePath: runtime(t), outfile: `${out}.tmp` },
    bytecode: true,
    plugins: [x509StubPlugin],
  });
  if (!built.success) throw new Error(`bun build for ${t.name} failed:\n${built.logs.map(String).join("\n")}`);
  renameSync(`${out}.tmp`, out);
  if (t.host) {
    const v = run([out, "version"]).trim();
    if (!v.startsWith("trellis ")) throw new Error(`${out} version printed ${JSON.stringify(v)}`);
  }
  const size = statSync(out).size;
  console.log(`built dist/trellis-${t.name.padEnd(16)} ${(size / 1e6).toFixed(1).padStart(6)} MB  in ${((performance.now() - started) / 1000).toFixed(1)} s${t.host ? "  (ran `version`)" : ""}`);
}

// The installer and the files it installs beside the binary ship in the release directory too.
const EXTRAS: [string, string][] = [["install/install.sh", "install.sh"], ["config/trellis.toml", "trellis.toml"], ["install/trellis.service", "trellis.service"], ["install/trellis.init", "trellis.init"]];
for (const [from, to] of EXTRAS) writeFileSync(join(DIST, to), readFileSync(join(ROOT, from)));
// SHA256SUMS covers every binary and file in dist/, in `sha256sum -c` format. Binaries of targets not
// built this time stay listed (the installer needs them), with a warning: cut releases with --target all.
const sums: string[] = [];
for (const t of Object.values(TARGETS)) {
  const f = `trellis-${t.name}`;
  if (!existsSync(join(DIST, f))) continue;
  if (!names.some((n) => TARGETS[n] === t)) console.log(`warning: dist/${f} is from an earlier build (not rebuilt now); run with --target all before publishing`);
  sums.push(f);
}
sums.push(...EXTRAS.map(([, to]) => to));
const lines = sums.map((f) => `${createHash("sha256").update(readFileSync(join(DIST, f))).digest("hex")}  ${f}`);
writeFileSync(join(DIST, "SHA256SUMS.tmp"), lines.join("\n") + "\n");
renameSync(join(DIST, "SHA256SUMS.tmp"), join(DIST, "SHA256SUMS"));
console.log(`wrote dist/SHA256SUMS (${lines.length} files)`);
