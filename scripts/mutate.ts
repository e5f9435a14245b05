// Mutation run over the security code: delete or invert each check in turn, run the unit tests that
// cover it, and report the mutants no test noticed (survivors). Not run by CI: ~20-40 min on 2 cores.
//
//   bun scripts/mutate.ts [--only PATH_SUBSTRING] [--jobs N] [--out FILE] [--list]
//
// Works on a copy of the checkout in a temporary directory (src/, test/, configs; node_modules linked),
// so the checkout is never touched and a run can go on beside the test suite.
//
// Mutation operators, line by line (a line with a comment saying `mutate: skip` is left alone):
//   guard-off   `if (C) throw|return|continue|break` → `if (false) …`   (the check is deleted)
//   negate      `if (C)` → `if (!(C))`                                   (the check is inverted)
//   eq-flip     the first `===` ↔ `!==` on the line
//   bound       the first `<` ↔ `<=` or `>` ↔ `>=` (off-by-one at a limit)
//   and-or      the first `&&` ↔ `||`
//   bool        `return true` ↔ `return false`
//   call-off    a verification called only for its throw (`r.verify();`, `verifyX(...);`) is deleted
// The unit tests only (seconds per mutant); what only the e2e tests can see shows up as a survivor.
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const ROOT = resolve(import.meta.dir, "..");

/** The files mutated, and the unit tests that must notice: each file's own folder and its consumers. */
const TARGETS: { files: string[]; tests: string[] }[] = [
  { files: ["src/handshake/machine.ts", "src/handshake/kdf.ts", "src/handshake/messages.ts", "src/handshake/fragment.ts"], tests: ["src/handshake", "src/session"] },
  { files: ["src/session/sessions.ts", "src/session/keypair.ts", "src/session/replay.ts", "src/session/ratelimit.ts", "src/session/wire.ts"], tests: ["src/session"] },
  { files: ["src/trust/certificate.ts", "src/trust/enrolment.ts", "src/trust/networks.ts", "src/trust/revocation.ts", "src/trust/policy.ts", "src/trust/root.ts", "src/trust/dns.ts"], tests: ["src/trust", "src/datapath"] },
  { files: ["src/signal/messages.ts", "src/signal/client.ts"], tests: ["src/signal"] },
  { files: ["src/datapath/outside.ts", "src/datapath/inside.ts", "src/datapath/ip.ts", "src/datapath/toobig.ts"], tests: ["src/datapath"] },
  { files: ["src/route/record.ts"], tests: ["src/route"] },
];

export interface Mutant {
  file: string;
  line: number; // 1-based
  op: string;
  before: string;
  after: string;
}

/** The index of the `)` closing the `(` at `open`, or -1. */
function closeParen(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === "(") depth++;
    else if (s[i] === ")" && --depth === 0) return i;
  }
  return -1;
}

/** Every mutant of one source line. */
export function mutantsOfLine(line: string): { op: string; after: string }[] {
  const out: { op: string; after: string }[] = [];
  const code = line.replace(/\/\/.*$/, "");
  if (/mutate: skip/.test(line) || /^\s*(\*|\/\/|import |export (type|interface) )/.test(line)) return out;
  const m = /\bif \(/.exec(code);
  if (m) {
    const open = m.index + 3;
    const close = closeParen(code, open);
    if (close > 0) {
      const cond = line.slice(open + 1, close);
      const rest = line.slice(close + 1);
      if (/^\s*(\{?\s*)?(throw|return|continue|break)\b/.test(rest) || /^\s*\{\s*$/.test(rest))
        out.push({ op: "guard-off", after: line.slice(0, open + 1) + "false" + line.slice(close) });
      out.push({ op: "negate", after: line.slice(0, open + 1) + `!(${cond})` + line.slice(close) });
    }
  }
  const swap = (op: string, re: RegExp, f: (s: string) => string) => {
    const x = re.exec(code);
    if (x) out.push({ op, after: line.slice(0, x.index) + f(x[0]) + line.slice(x.index + x[0].length) });
  };
  swap("eq-flip", /===|!==/, (s) => (s === "===" ? "!==" : "==="));
  // Comparisons, not arrows, generics or shifts: spaces on both sides.
  swap("bound", / (<=|>=|<|>) /, (s) => ({ " < ": " <= ", " <= ": " < ", " > ": " >= ", " >= ": " > " })[s]!);
  swap("and-or", /&&|\|\|/, (s) => (s === "&&" ? "||" : "&&"));
  swap("bool", /return (true|false)\b/, (s) => (s === "return true" ? "return false" : "return true"));
  // A verification called for its throw: delete the call.
  if (/^\s*[\w.]+\.verify\(\);\s*$/.test(code) || /^\s*verify\w*\([^;]*\);\s*$/.test(code)) out.push({ op: "call-off", after: line.replace(/\S.*$/, "/* mutant: call deleted */") });
  return out.filter((o) => o.after !== line);
}

export function mutantsOf(file: string, text: string): Mutant[] {
  const lines = text.split("\n");
  const out: Mutant[] = [];
  let inBlockComment = false;
  lines.forEach((l, i) => {
    if (inBlockComment) {
      if (l.includes("*/")) inBlockComment = false;
      return;
    }
    if (/^\s*\/\*/.test(l) && !l.includes("*/")) return void (inBlockComment = true);
    for (const m of mutantsOfLine(l)) out.push({ file, line: i + 1, op: m.op, before: l, after: m.after });
  });
  return out;
}

/** A copy of the checkout to mutate in: sources copied, node_modules linked. */
function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), "trellis-mutate-"));
  for (const p of ["src", "test", "ffi", "config", "install", "scripts", "package.json", "bunfig.toml", "tsconfig.json"])
    if (existsSync(join(ROOT, p))) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

function runTests(dir: string, tests: string[], timeoutMs: number): Promise<"killed" | "survived" | "timeout"> {
  return new Promise((res) => {
    const p = spawn(join(dir, "node_modules/.bin/bun"), ["test", "--bail", ...tests], { cwd: dir, stdio: "ignore", detached: true });
    const t = setTimeout(() => {
      try {
        process.kill(-p.pid!, "SIGKILL");
      } catch {}
      res("timeout");
    }, timeoutMs);
    p.on("exit", (code) => {
      clearTimeout(t);
      res(code === 0 ? "survived" : "killed");
    });
  });
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { only: { type: "string" }, jobs: { type: "string", default: "1" }, out: { type: "string" }, list: { type: "boolean" }, timeout: { type: "string", default: "120" } } });
  const jobs = Math.max(1, Number(values.jobs));
  const plan: { m: Mutant; tests: string[] }[] = [];
  for (const t of TARGETS)
    for (const f of t.files) {
      if (values.only && !f.includes(values.only)) continue;
      if (!existsSync(join(ROOT, f))) continue; // moved by a refactor: say so in the report below
      for (const m of mutantsOf(f, readFileSync(join(ROOT, f), "utf8"))) plan.push({ m, tests: t.tests.filter((x) => existsSync(join(ROOT, x))) });
    }
  if (values.list) {
    for (const { m } of plan) console.log(`${m.file}:${m.line} ${m.op}\n  - ${m.before.trim()}\n  + ${m.after.trim()}`);
    console.log(`${plan.length} mutants`);
    process.exit(0);
  }
  // Baseline: every test set passes unmutated, in a workspace.
  const spaces = Array.from({ length: jobs }, workspace);
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.on(sig, () => {
      for (const d of spaces) rmSync(d, { recursive: true, force: true });
      process.exit(130);
    });
  for (const tests of new Set(plan.map((p) => p.tests.join(" ")))) {
    const r = await runTests(spaces[0], tests.split(" "), Number(values.timeout) * 1000);
    if (r !== "survived") throw new Error(`baseline: ${tests} does not pass unmutated (${r}); fix the tests first`);
  }
  const results: { m: Mutant; status: string }[] = [];
  let next = 0;
  const started = Date.now();
  await Promise.all(spaces.map(async (dir) => {
    while (next < plan.length) {
      const { m, tests } = plan[next++];
      const path = join(dir, m.file);
      const orig = readFileSync(path, "utf8");
      const lines = orig.split("\n");
      lines[m.line - 1] = m.after;
      writeFileSync(path, lines.join("\n"));
      const status = await runTests(dir, tests, Number(values.timeout) * 1000);
      writeFileSync(path, orig);
      results.push({ m, status });
      const done = results.length;
      console.log(`[${done}/${plan.length} ${Math.round((Date.now() - started) / 1000)}s] ${status.padEnd(8)} ${m.file}:${m.line} ${m.op}: ${m.after.trim().slice(0, 110)}`);
    }
  }));
  for (const d of spaces) rmSync(d, { recursive: true, force: true });
  const count = (s: string) => results.filter((r) => r.status === s).length;
  const survivors = results.filter((r) => r.status === "survived").sort((a, b) => (a.m.file + a.m.line).localeCompare(b.m.file + b.m.line));
  const lines = [
    `mutants: ${results.length} tried, ${count("killed")} killed, ${count("timeout")} timed out (counted as killed), ${survivors.length} survived`,
    ...survivors.map((r) => `SURVIVED ${r.m.file}:${r.m.line} ${r.m.op}\n  - ${r.m.before.trim()}\n  + ${r.m.after.trim()}`),
  ];
  console.log(lines.join("\n"));
  if (values.out) writeFileSync(values.out, lines.join("\n") + "\n");
}
