// Headless Chromium for tests, driven over the DevTools protocol on a pipe (no port to reach across
// namespaces): run it inside a node's namespace, load a page, read the DOM, collect console errors,
// take screenshots. Debian's `chromium` package (scripts/deps.sh installs it).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";

export function chromiumPath(): string | null {
  for (const name of ["chromium", "chromium-browser"]) {
    const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

interface Pending {
  resolve(v: any): void;
  reject(e: Error): void;
}

export class Browser {
  /** Console errors, uncaught exceptions and failed loads, as Chromium reported them. */
  readonly errors: string[] = [];
  readonly console: string[] = [];
  private readonly proc: ChildProcess;
  private readonly out: Writable;
  private readonly profile: string;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: { method: string; resolve(p: any): void }[] = [];
  private session?: string;
  private buf = "";
  private exited = false;

  /** Start Chromium, inside namespace `ns` when given. */
  constructor(ns?: string, readonly size = { width: 1280, height: 900 }) {
    const bin = chromiumPath();
    if (!bin) throw new Error("chromium is not installed (scripts/deps.sh installs it)");
    this.profile = mkdtempSync(join(tmpdir(), "trellis-chromium-"));
    const args = [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
      `--user-data-dir=${this.profile}`, "--remote-debugging-pipe", `--window-size=${size.width},${size.height}`, "about:blank",
    ];
    const cmd = ns ? ["ip", "netns", "exec", ns, bin, ...args] : [bin, ...args];
    this.proc = spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] });
    this.proc.on("exit", () => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error("chromium exited"));
      this.pending.clear();
    });
    this.out = this.proc.stdio[3] as Writable;
    (this.proc.stdio[4] as Readable).on("data", (d: Buffer) => this.onData(d));
  }

  private onData(d: Buffer): void {
    this.buf += d.toString("utf8");
    let i: number;
    while ((i = this.buf.indexOf("\0")) >= 0) {
      const msg = JSON.parse(this.buf.slice(0, i));
      this.buf = this.buf.slice(i + 1);
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`${msg.error.message} (${msg.error.code})`));
        else p?.resolve(msg.result);
      } else this.onEvent(msg.method, msg.params);
    }
  }

  private onEvent(method: string, params: any): void {
    if (method === "Runtime.consoleAPICalled") {
      const text = (params.args ?? []).map((a: any) => a.value ?? a.description ?? "").join(" ");
      this.console.push(`${params.type}: ${text}`);
      if (params.type === "error" || params.type === "assert") this.errors.push(`console.${params.type}: ${text}`);
    } else if (method === "Runtime.exceptionThrown") {
      const d = params.exceptionDetails;
      this.errors.push(`exception: ${d?.exception?.description ?? d?.text}`);
    } else if (method === "Log.entryAdded" && params.entry.level === "error") {
      this.errors.push(`log: ${params.entry.text}${params.entry.url ? ` (${params.entry.url})` : ""}`);
    }
    for (let i = this.waiters.length - 1; i >= 0; i--)
      if (this.waiters[i].method === method) {
        this.waiters[i].resolve(params);
        this.waiters.splice(i, 1);
      }
  }

  /** One DevTools command (on the page's session unless `browser`). */
  send(method: string, params: object = {}, browser = false): Promise<any> {
    if (this.exited) return Promise.reject(new Error("chromium exited"));
    const id = this.nextId++;
    const msg: Record<string, unknown> = { id, method, params };
    if (!browser && this.session) msg.sessionId = this.session;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.out.write(JSON.stringify(msg) + "\0");
    });
  }

  private event(method: string, timeoutMs: number): Promise<any> {
    return new Promise((resolve, reject) => {
      const w = { method, resolve: (p: any) => (clearTimeout(t), resolve(p)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Open a tab, attach to it and load `url` (resolves at the load event). */
  async open(url: string, timeoutMs = 15000): Promise<void> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" }, true);
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true }, true);
    this.session = sessionId;
    await Promise.all([this.send("Runtime.enable"), this.send("Log.enable"), this.send("Page.enable")]);
    await this.send("Emulation.setDeviceMetricsOverride", { width: this.size.width, height: this.size.height, deviceScaleFactor: 1, mobile: false });
    const loaded = this.event("Page.loadEventFired", timeoutMs);
    const nav = await this.send("Page.navigate", { url });
    if (nav.errorText) throw new Error(`loading ${url}: ${nav.errorText}`);
    await loaded;
  }

  /** Evaluate a JavaScript expression in the page; its value (JSON-serialisable). */
  async eval<T = any>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`in page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** Light or dark, as prefers-color-scheme reports it. */
  async scheme(value: "light" | "dark"): Promise<void> {
    await this.send("Emulation.setEmulatedMedia", { features: [{ name: "prefers-color-scheme", value }] });
  }

  /** Press a key (Tab, Enter, ArrowDown...) as a keyboard would. */
  async key(key: string, code = key, keyCode = { Tab: 9, Enter: 13, ArrowDown: 40, ArrowUp: 38, " ": 32 }[key] ?? 0): Promise<void> {
    const base = { key, code, windowsVirtualKeyCode: keyCode, nativeVirtualKeyCode: keyCode };
    await this.send("Input.dispatchKeyEvent", { type: "keyDown", ...base, ...(key === "Enter" ? { text: "\r" } : {}) });
    await this.send("Input.dispatchKeyEvent", { type: "keyUp", ...base });
  }

  /** Save a PNG of the whole page to `path`; returns its size in bytes. */
  async screenshot(path: string): Promise<number> {
    const { cssContentSize } = await this.send("Page.getLayoutMetrics");
    const height = Math.ceil(Math.max(this.size.height, cssContentSize?.height ?? 0));
    const r = await this.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true, clip: { x: 0, y: 0, width: this.size.width, height, scale: 1 } });
    const png = Buffer.from(r.data, "base64");
    writeFileSync(path, png);
    return png.length;
  }

  async close(): Promise<void> {
    if (!this.exited) {
      await Promise.race([this.send("Browser.close", {}, true).catch(() => {}), Bun.sleep(2000)]);
      if (!this.exited) this.proc.kill("SIGKILL");
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}
