// Real trellis nodes for e2e tests and the demo: each runs `trellis up` as its own process in a namespace.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { initIdentity, type NodeId } from "../../src/identity/identity.ts";
import { ipv6Of } from "../../src/identity/address.ts";
import type { TestNet } from "./netns.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const BUN = join(ROOT, "node_modules/.bin/bun");
export const CLI = join(ROOT, "src/cli/main.ts");
/** How to run trellis: the source through Bun, or a built binary when TRELLIS_BIN names one. */
export function trellisCommand(): string[] {
  return process.env.TRELLIS_BIN ? [process.env.TRELLIS_BIN] : [BUN, CLI];
}

export interface NodeSpec {
  host: string;
  name: string;
  ipv4?: string;
  seeds?: string[];
  allow?: NodeId[];
  relay?: boolean;
  /** [relay] listen (default 0.0.0.0:7443). */
  listen?: string;
  /** [node] idle_timeout, e.g. "4s". */
  idleTimeout?: string;
  /** [node] user: whom `trellis up` becomes after opening its TUN (default "nobody"; "root" keeps root). */
  user?: string;
  /** A command prefix `trellis up` runs under inside the namespace (e.g. setpriv, as systemd would). */
  wrap?: string[];
  /** Extra TOML appended to the config. */
  extra?: string;
  /** A module preloaded into the node's process (test/lib/rogue-*.ts: a node that misbehaves on purpose). */
  preload?: string;
  /** Flags for bun itself (bench: --smol, --cpu-prof); needs the source, not TRELLIS_BIN. */
  bunFlags?: string[];
}

/** Poll `fn` every 100 ms until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 20000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    await Bun.sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
}

export class TestNode {
  readonly id: NodeId;
  readonly ipv6: string;
  readonly dir: string;
  readonly configPath: string;
  readonly logPath: string;
  private proc?: ChildProcess;
  private exited?: Promise<number | null>;

  constructor(readonly net: TestNet, readonly spec: NodeSpec, baseDir: string) {
    this.dir = join(baseDir, spec.name);
    mkdirSync(this.dir, { recursive: true });
    const identity = initIdentity(join(this.dir, "state"));
    this.id = identity.public.id;
    this.ipv6 = ipv6Of(this.id);
    this.configPath = join(this.dir, "trellis.toml");
    this.logPath = join(this.dir, "node.log");
    this.writeConfig();
  }

  get ns(): string {
    return this.net.host(this.spec.host).ns;
  }

  writeConfig(): void {
    const s = this.spec;
    const q = (v: string) => JSON.stringify(v);
    const lines = [
      "[node]",
      `name = ${q(s.name)}`,
      `state_dir = ${q(join(this.dir, "state"))}`,
      ...(s.ipv4 ? [`ipv4 = ${q(s.ipv4)}`] : []),
      ...(s.idleTimeout ? [`idle_timeout = ${q(s.idleTimeout)}`] : []),
      `log_level = "debug"`,
      `user = ${q(s.user ?? "nobody")}`,
      "[network]",
      `seeds = [${(s.seeds ?? []).map(q).join(", ")}]`,
      `allow = [${(s.allow ?? []).map(q).join(", ")}]`,
      "[relay]",
      `enabled = ${s.relay ? "true" : "false"}`,
      `listen = ${q(s.listen ?? "0.0.0.0:7443")}`,
      s.extra ?? "",
    ];
    writeFileSync(this.configPath, lines.join("\n") + "\n");
  }

  /** Start `trellis up` in the host's namespace and wait until its API answers. */
  async start(): Promise<void> {
    const log = openSync(this.logPath, "a");
    let cmd = trellisCommand();
    if (this.spec.preload || this.spec.bunFlags) {
      if (process.env.TRELLIS_BIN) throw new Error(`node ${this.spec.name}: a preload or bun flags need the source, not TRELLIS_BIN`);
      cmd = [BUN, ...(this.spec.bunFlags ?? []), ...(this.spec.preload ? ["--preload", this.spec.preload] : []), CLI];
    }
    this.proc = spawn("ip", ["netns", "exec", this.ns, ...(this.spec.wrap ?? []), ...cmd, "up", "--config", this.configPath], { stdio: ["ignore", log, log] });
    this.exited = new Promise((res) => this.proc!.on("exit", (code) => res(code)));
    await waitFor(`${this.spec.name} API`, async () => {
      if (this.proc?.exitCode !== null) throw new Error(`node ${this.spec.name} exited: ${this.tail()}`);
      return this.api("/v1/health").ok;
    }, 60000); // generous: a loaded 2-core machine starting nine nodes at once takes a while
  }

  /** SIGTERM and wait for a clean exit. */
  async stop(): Promise<number | null> {
    if (!this.running) return this.proc?.exitCode ?? null;
    this.proc!.kill("SIGTERM");
    const t = setTimeout(() => this.proc?.kill("SIGKILL"), 5000);
    const code = await this.exited!;
    clearTimeout(t);
    return code;
  }

  /** Whether the process still runs (one killed by a signal has exitCode null too: signalCode says so). */
  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The node's process id (`ip netns exec` execs trellis in place), while it runs. */
  get pid(): number | undefined {
    return this.running ? this.proc!.pid : undefined;
  }

  signal(sig: NodeJS.Signals): void {
    this.proc?.kill(sig);
  }

  kill(): void {
    this.proc?.kill("SIGKILL");
  }

  /**
   * One request to the node's local API from inside its namespace: the HTTP status and the JSON body.
   * Throws when there is no answer at all (the node died: the error carries its log). Every e2e call
   * to the API goes through here, so a credential the API may require is added in one place.
   */
  request(method: "GET" | "POST", path: string, body?: string): { status: number; json: any } {
    if (this.proc && this.proc.exitCode !== null) throw new Error(`node ${this.spec.name} exited (${this.proc.exitCode}):\n${this.tail(40)}`);
    const args = ["curl", "-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", "-X", method];
    // The API's token (state/api.token, fresh at each start) for what needs it; harmless elsewhere.
    if (existsSync(join(this.dir, "state", "api.token"))) args.push("-H", `Authorization: Bearer ${this.apiToken()}`);
    if (body !== undefined) args.push("--data-binary", "@-");
    const r = spawnSync("ip", ["netns", "exec", this.ns, ...args, `http://127.0.0.1:7080${path}`], { encoding: "utf8", input: body });
    const out = r.stdout ?? "";
    const cut = out.lastIndexOf("\n");
    const status = Number(out.slice(cut + 1));
    if (r.status !== 0 || !status) throw new Error(`${method} ${path} on ${this.spec.name}: no answer (curl ${r.status}: ${(r.stderr ?? "").trim()})`);
    const text = out.slice(0, cut);
    let json: any;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      throw new Error(`${method} ${path} on ${this.spec.name}: HTTP ${status}, not JSON: ${text.slice(0, 200)}`);
    }
    return { status, json };
  }

  /** GET from the node's API; anything but a 2xx answer throws (never an empty object that passes for one). */
  api(path: string): any {
    const r = this.request("GET", path);
    if (r.status < 200 || r.status > 299) throw new Error(`GET ${path} on ${this.spec.name}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  }

  /** POST to the node's API; anything but a 2xx answer throws. */
  post(path: string, body: string): any {
    const r = this.request("POST", path, body);
    if (r.status < 200 || r.status > 299) throw new Error(`POST ${path} on ${this.spec.name}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  }

  /**
   * ping from this node's namespace: true when a reply came, false when none did (ping's exit 1).
   * Anything else (no such namespace, a bad address, ping missing) throws: a negative test must not
   * pass because the probe itself broke.
   */
  ping(addr: string, count = 2): boolean {
    const r = spawnSync("ip", ["netns", "exec", this.ns, "ping", "-c", String(count), "-i", "0.2", "-W", "2", addr], { encoding: "utf8" });
    if (r.status === 0) return true;
    if (r.status === 1 && / 0 received/.test(r.stdout ?? "")) return false;
    throw new Error(`ping ${addr} from ${this.spec.name} failed to run (exit ${r.status}): ${(r.stderr || r.stdout || "").trim()}`);
  }

  /** Where the log ends now: pass it to healthySince() after doing something hostile. */
  logMark(): number {
    return this.logs().length;
  }

  /**
   * The node still runs and serves its API, and logged no uncaught exception or unhandled rejection
   * since `mark` (`trellis up` logs those and carries on, so "it did not exit" alone proves little).
   */
  assertHealthySince(mark: number): void {
    if (this.proc?.exitCode !== null) throw new Error(`node ${this.spec.name} exited (${this.proc?.exitCode}):\n${this.tail(40)}`);
    const h = this.api("/v1/health");
    if (h?.ok !== true) throw new Error(`node ${this.spec.name}: /v1/health says ${JSON.stringify(h)}`);
    const since = this.logs().slice(mark);
    const bad = since.split("\n").filter((l) => /uncaught exception|unhandled rejection/.test(l));
    if (bad.length) throw new Error(`node ${this.spec.name} logged ${bad.length} uncaught exception(s):\n${bad.slice(0, 3).join("\n")}`);
  }

  /** The node's local API token (state/api.token, written fresh at each start, 0600). */
  apiToken(): string {
    return readFileSync(join(this.dir, "state", "api.token"), "utf8").trim();
  }

  /** POST `body` to the node's local API with its token, from inside its namespace; the parsed answer. */
  apiPost(path: string, body: string): any {
    return this.request("POST", path, body).json; // any status: the caller checks the answer
  }

  /** Run the trellis CLI inside the namespace, against this node's config. */
  cli(args: string[]): { code: number; out: string; err: string } {
    const r = Bun.spawnSync(["ip", "netns", "exec", this.ns, ...trellisCommand(), ...args]);
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  }

  logs(): string {
    try {
      return readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }

  tail(n = 30): string {
    return this.logs().split("\n").slice(-n).join("\n");
  }
}

/**
 * End of an e2e file: stop every node (SIGTERM), print their logs when TRELLIS_KEEP_LOGS is set,
 * remove the test's namespaces and its directory.
 */
export async function teardown(nodes: (TestNode | undefined)[], net: TestNet | undefined, dir: string | undefined): Promise<void> {
  for (const n of nodes) await n?.stop().catch(() => {});
  if (process.env.TRELLIS_KEEP_LOGS) for (const n of nodes) if (n) console.log(`--- ${n.spec.name} ---\n${n.logs()}`);
  net?.destroy();
  if (dir) removeDir(dir);
}

export function tempDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `trellis-${tag}-`));
  chmodSync(d, 0o711); // nodes drop root after start and must still reach their config (SIGHUP) below it
  return d;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The standard small network: a seed, and alpha (100.64.0.2) and bravo (100.64.0.3) that allow each
 * other, on hosts "seed", "a" and "b" (added to `net` here). Not started.
 */
export function pairWithSeed(net: TestNet, dir: string): { seed: TestNode; a: TestNode; b: TestNode } {
  for (const h of ["seed", "a", "b"]) net.addHost(h);
  const seeds = [`http://${net.host("seed").ip}:7443`];
  const seed = new TestNode(net, { host: "seed", name: "seed", relay: true }, dir);
  const a = new TestNode(net, { host: "a", name: "alpha", ipv4: "100.64.0.2/24", seeds }, dir);
  const b = new TestNode(net, { host: "b", name: "bravo", ipv4: "100.64.0.3/24", seeds }, dir);
  a.spec.allow = [b.id];
  b.spec.allow = [a.id];
  a.writeConfig();
  b.writeConfig();
  return { seed, a, b };
}
