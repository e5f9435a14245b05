// The host side of subnet routes and exit nodes: forwarding sysctls, the nftables SNAT table, routes on the TUN, LAN health.
//
// Every change to the host is written to <state_dir>/host-routes.json before it is made, so that
// stop() undoes exactly what start made, and the next start undoes what a crashed run left (a TUN's
// own routes vanish with it; sysctls, the nftables table and routes outside the TUN do not).
// Commands run through a Runner so that tests can record them without touching a host.
//
// What a router changes: net.ipv4.conf.<dev>.forwarding = 1 on the TUN and on each LAN device that
// reaches an advertised prefix (IPv4 forwarding is per receiving interface: nothing else on the host
// starts forwarding). IPv6 (an IPv6 prefix, or an exit with an IPv6 uplink) needs
// net.ipv6.conf.all.forwarding = 1: Linux has no per-interface switch for IPv6 forwarding, so it is
// host-wide, and said in the log; an uplink or LAN device that took router advertisements
// (accept_ra = 1, ignored once forwarding is on) gets accept_ra = 2 so that it keeps its SLAAC
// address and default route. With `snat = true` one table, `inet trellis_<tun>`, whose postrouting
// chain masquerades what comes out of the TUN towards those prefixes (or, for an exit node, towards
// its uplinks, IPv4 and IPv6). An exit's table also has an input chain that drops packets to its own
// overlay addresses from overlay sources arriving on any interface but the TUN (and lo: this host's
// own): they can only be spoofed, by a host on the LAN or WAN side claiming a member's address — the
// exit's DNS forwarder would ask for them, and any UDP service on the overlay address believe them.
//
// A member in exit mode with `[routes] exit_dns` points /etc/resolv.conf at the exit (its previous
// content is recorded first and written back on stop, on leaving exit mode, and after a crash). The
// file is opened for writing at start, while the node still has root: after the privilege drop it is
// written through that descriptor. A resolv.conf that is a symlink (systemd-resolved, resolvconf)
// belongs to the tool that manages it and is left alone (with a warning saying what to do).
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, ftruncateSync, lstatSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Log } from "../log.ts";
import type { Subnet } from "../trust/subnet.ts";
import { fmtPrefix } from "../route/subnets.ts";
import { OVERLAY_PREFIX6, OVERLAY_PREFIX6_LEN } from "../identity/address.ts";

export interface Runner {
  run(cmd: string[], input?: string): { ok: boolean; out: string; err: string };
}

export const systemRunner: Runner = {
  run(cmd, input) {
    const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", input });
    return { ok: r.status === 0, out: r.stdout ?? "", err: (r.stderr ?? "").trim() || (r.error?.message ?? "") };
  },
};

/** What this node changed on the host (the file's content). */
export interface HostChanges {
  /** nftables table ("inet NAME"), if made. */
  table?: string;
  /** sysctl keys set, with the value they had before. */
  sysctls: { key: string; before: string }[];
  /** `ip route` arguments of routes added outside the TUN (exit mode), removed with `ip route del ARGS`. */
  routes: string[][];
  /** `ip rule` arguments added (exit mode), removed with `ip rule del ARGS`. */
  rules: string[][];
  /** /etc/resolv.conf rewritten for exit_dns: its path and what it held before. */
  resolv?: { path: string; before: string };
}

const FILE = "host-routes.json";

/** nftables table name for a TUN (names may hold only letters, digits and '_'). */
export const tableName = (tun: string) => `trellis_${tun.replace(/[^a-zA-Z0-9_]/g, "_")}`;

/** This node's overlay addresses: its IPv6 one, its IPv4 ones with their networks' prefix lengths. */
export interface OwnOverlay {
  ipv6: string;
  ipv4: { address: string; prefix: number }[];
}

/**
 * The nftables ruleset for a router: masquerade what leaves the TUN for the LAN prefixes or the uplink;
 * with `own` (an exit), drop what claims an overlay source to our overlay addresses off the TUN.
 */
export function snatRuleset(table: string, tun: string, prefixes: Subnet[], uplinks: string[] = [], own?: OwnOverlay): string {
  const v4 = prefixes.filter((p) => p.family === 4 && p.prefix > 0).map(fmtPrefix);
  const v6 = prefixes.filter((p) => p.family === 6 && p.prefix > 0).map(fmtPrefix);
  const off = `iifname != { "lo", "${tun}" }`;
  const nets4 = [...new Set(own?.ipv4.map((a) => `${networkOf(a.address, a.prefix)}/${a.prefix}`))];
  const lines = [
    `table inet ${table} {`,
    ` chain postrouting {`,
    `  type nat hook postrouting priority 100; policy accept;`,
    ...(v4.length ? [`  iifname "${tun}" ip daddr { ${v4.join(", ")} } masquerade`] : []),
    ...(v6.length ? [`  iifname "${tun}" ip6 daddr { ${v6.join(", ")} } masquerade`] : []),
    ...[...new Set(uplinks)].map((u) => `  iifname "${tun}" oifname "${u}" masquerade`),
    ` }`,
    ...(own
      ? [
          ` chain spoofed {`,
          `  type filter hook input priority -10; policy accept;`,
          `  ${off} ip6 saddr ${OVERLAY_PREFIX6}/${OVERLAY_PREFIX6_LEN} ip6 daddr ${own.ipv6} drop`,
          ...(own.ipv4.length ? [`  ${off} ip saddr { ${nets4.join(", ")} } ip daddr { ${own.ipv4.map((a) => a.address).join(", ")} } drop`] : []),
          ` }`,
        ]
      : []),
    `}`,
  ];
  return lines.join("\n") + "\n";
}

/** The network address of `address`/`prefix` (IPv4). */
function networkOf(address: string, prefix: number): string {
  const n = address.split(".").reduce((x, o) => x * 256 + Number(o), 0);
  const net = n - (n % 2 ** (32 - prefix));
  return [24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join(".");
}

export class HostRoutes {
  private changes: HostChanges = { sysctls: [], routes: [], rules: [] };

  constructor(
    private readonly stateDir: string,
    readonly tun: string,
    private readonly log: Log,
    private readonly runner: Runner = systemRunner,
  ) {}

  private get file(): string {
    return join(this.stateDir, FILE);
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.changes) + "\n", { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  private run(cmd: string[], input?: string): boolean {
    const r = this.runner.run(cmd, input);
    if (!r.ok) this.log("warn", `host: ${cmd.join(" ")} failed: ${r.err}`);
    return r.ok;
  }

  /** Undo what a previous run left behind (it crashed, or was killed): before anything else at start. */
  recover(): void {
    if (!existsSync(this.file)) return;
    let left: HostChanges;
    try {
      left = JSON.parse(readFileSync(this.file, "utf8"));
    } catch {
      rmSync(this.file, { force: true });
      return;
    }
    this.log("info", `host: undoing what the last run left (it did not stop cleanly): ${describe(left)}`);
    this.undo(left);
    rmSync(this.file, { force: true });
  }

  private undo(c: HostChanges): void {
    if (c.resolv) this.writeResolv(c.resolv.path, c.resolv.before);
    for (const r of [...(c.rules ?? [])].reverse()) this.runner.run(["ip", "rule", "del", ...r]);
    for (const r of [...(c.routes ?? [])].reverse()) this.runner.run(["ip", "route", "del", ...r]);
    if (c.table) this.runner.run(["nft", "delete", "table", ...c.table.split(" ")]);
    for (const s of [...(c.sysctls ?? [])].reverse()) this.writeSysctl(s.key, s.before);
  }

  private sysctlPath(key: string): string {
    return `/proc/sys/${key.replace(/\./g, "/")}`;
  }

  private readSysctl(key: string): string | undefined {
    const r = this.runner.run(["cat", this.sysctlPath(key)]);
    return r.ok ? r.out.trim() : undefined;
  }

  private writeSysctl(key: string, v: string): boolean {
    return this.runner.run(["sysctl", "-qw", `${key}=${v}`]).ok;
  }

  /** Set a sysctl, remembering its old value (once); returns whether it now holds `v`. */
  setSysctl(key: string, v: string): boolean {
    const before = this.readSysctl(key);
    if (before === undefined) return (this.log("warn", `host: no sysctl ${key}`), false);
    if (before === v) return true;
    if (!this.changes.sysctls.some((s) => s.key === key)) {
      this.changes.sysctls.push({ key, before });
      this.save();
    }
    const ok = this.writeSysctl(key, v);
    if (ok) this.log("info", `host: ${key} = ${v} (was ${before})`);
    return ok;
  }

  /** The device the host routes `address` through (undefined when there is no route, or it is the TUN). */
  deviceFor(address: string): string | undefined {
    const r = this.runner.run(["ip", "-j", "route", "get", address]);
    if (!r.ok) return undefined;
    try {
      const dev = JSON.parse(r.out)[0]?.dev as string | undefined;
      return dev && dev !== this.tun && dev !== "lo" ? dev : undefined;
    } catch {
      return undefined;
    }
  }

  /** The device of the host's default route (an exit node's uplink), IPv4 or (`v` = 6) IPv6. */
  uplink(v: 4 | 6 = 4): { dev: string; via?: string } | undefined {
    const r = this.runner.run(["ip", ...(v === 6 ? ["-6"] : []), "-j", "route", "show", "default"]);
    try {
      const d = JSON.parse(r.out).find((x: { dev?: string }) => x.dev && x.dev !== this.tun);
      return d ? { dev: d.dev, via: d.gateway } : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Make this host a router for `prefixes` (and an exit through `uplink`): forwarding on the TUN and
   * on the devices that lead there, and with `snat` the masquerade table. Returns the LAN devices.
   */
  router(prefixes: Subnet[], snat: boolean, uplink?: string, uplink6?: string, own?: OwnOverlay): Map<string, string> {
    const lan = new Map<string, string>();
    for (const p of prefixes) {
      if (p.prefix === 0) continue;
      const probe = firstHost(p);
      const dev = this.deviceFor(probe);
      if (dev) lan.set(fmtPrefix(p), dev);
      else this.log("warn", `[routes] advertise: ${fmtPrefix(p)} is not reachable from this host (no route to ${probe}): advertised as down until it is`);
    }
    const devs = new Set([...lan.values(), ...(uplink ? [uplink] : []), ...(uplink6 ? [uplink6] : [])]);
    const v4 = prefixes.some((p) => p.family === 4 && p.prefix > 0) || uplink !== undefined;
    const v6 = prefixes.some((p) => p.family === 6 && p.prefix > 0) || uplink6 !== undefined;
    const lan4 = prefixes.filter((p) => p.family === 4 && p.prefix > 0).map((p) => lan.get(fmtPrefix(p))).filter((d): d is string => !!d);
    if (v4) for (const d of new Set([this.tun, ...lan4, ...(uplink ? [uplink] : [])])) this.setSysctl(`net.ipv4.conf.${d}.forwarding`, "1");
    if (v6) {
      // Host-wide (see the top of this file); devices that took router advertisements keep taking them.
      const lan6 = prefixes.filter((p) => p.family === 6 && p.prefix > 0).map((p) => lan.get(fmtPrefix(p))).filter((d): d is string => !!d);
      for (const d of new Set([...lan6, ...(uplink6 ? [uplink6] : [])])) if (this.readSysctl(`net.ipv6.conf.${d}.accept_ra`) === "1") this.setSysctl(`net.ipv6.conf.${d}.accept_ra`, "2");
      if (this.setSysctl("net.ipv6.conf.all.forwarding", "1")) this.log("info", "host: IPv6 forwarding is on host-wide (net.ipv6.conf.all.forwarding: Linux has no per-interface switch for it)");
    }
    this.log("info", `host: forwarding between ${this.tun} and ${[...devs].join(", ") || "(no device yet)"} for ${prefixes.map(fmtPrefix).join(", ")}${uplink ? ` and as exit node via ${uplink}` : ""}${uplink6 ? `${uplink ? "," : " and as exit node"} IPv6 via ${uplink6}` : ""}`);
    // An exit node always masquerades to its uplink; LAN prefixes only with snat.
    const masq = snat ? prefixes : [];
    const uplinks = [...(uplink ? [uplink] : []), ...(uplink6 ? [uplink6] : [])];
    if (masq.some((p) => p.prefix > 0) || uplinks.length || own) {
      const table = tableName(this.tun);
      this.runner.run(["nft", "delete", "table", "inet", table]);
      this.changes.table = `inet ${table}`;
      this.save();
      if (this.run(["nft", "-f", "-"], snatRuleset(table, this.tun, masq, uplinks, own)))
        this.log("info", `host: nftables table inet ${table}: masquerade from ${this.tun} to ${[...masq.filter((p) => p.prefix > 0).map(fmtPrefix), ...[...new Set(uplinks)].map((u) => `uplink ${u}`)].join(", ") || "nothing"}${own ? `; overlay sources to our overlay addresses taken only from ${this.tun}` : ""}`);
    }
    if (!snat && prefixes.length) this.log("info", "host: snat = false: overlay sources are kept (LAN hosts need a route back to the overlay through this router)");
    return lan;
  }

  /** Add an `ip route` (arguments after `ip route replace`), recorded for undo unless it is on the TUN. */
  addRoute(args: string[], onTun: boolean): boolean {
    if (!onTun) {
      this.changes.routes.push(args);
      this.save();
    }
    return this.run(["ip", "route", "replace", ...args]);
  }

  delRoute(args: string[]): void {
    this.runner.run(["ip", "route", "del", ...args]);
    const i = this.changes.routes.findIndex((r) => r.join(" ") === args.join(" "));
    if (i >= 0) {
      this.changes.routes.splice(i, 1);
      this.save();
    }
  }

  addRule(args: string[]): boolean {
    this.changes.rules.push(args);
    this.save();
    return this.run(["ip", "rule", "add", ...args]);
  }

  delRule(args: string[]): void {
    this.runner.run(["ip", "rule", "del", ...args]);
    const i = this.changes.rules.findIndex((r) => r.join(" ") === args.join(" "));
    if (i >= 0) {
      this.changes.rules.splice(i, 1);
      this.save();
    }
  }

  private resolvFd?: number;

  /**
   * Open `path` (/etc/resolv.conf) for writing now, while the node has root (exit_dns: it is rewritten
   * later, after the privilege drop). False, with a warning, when it is a symlink or cannot be opened.
   */
  openResolv(path: string): boolean {
    try {
      if (lstatSync(path).isSymbolicLink()) {
        this.log("warn", `[routes] exit_dns: ${path} is a symlink (managed by systemd-resolved or resolvconf): left alone; point that tool at the exit's overlay address (e.g. resolvectl dns ${this.tun} ADDRESS; resolvectl domain ${this.tun} '~.')`);
        return false;
      }
      this.resolvFd = openSync(path, "r+");
      this.resolvPath = path;
      return true;
    } catch (e) {
      this.log("warn", `[routes] exit_dns: cannot open ${path} for writing: ${(e as Error).message}`);
      return false;
    }
  }
  private resolvPath = "/etc/resolv.conf";

  /** Write `content` into resolv.conf in place (the file may be a bind mount: never renamed over). */
  private writeResolv(path: string, content: string): boolean {
    try {
      if (this.resolvFd !== undefined && path === this.resolvPath) {
        ftruncateSync(this.resolvFd, 0);
        writeSync(this.resolvFd, content, 0);
      } else writeFileSync(path, content);
      return true;
    } catch (e) {
      this.log("warn", `host: cannot write ${path}: ${(e as Error).message}`);
      return false;
    }
  }

  /** Point the resolver at `nameserver` (exit_dns), keeping the file's search and options lines; the old content is recorded first. */
  setResolver(nameserver: string, why: string): boolean {
    if (this.resolvFd === undefined) return false;
    const before = this.changes.resolv?.before ?? readFileSync(this.resolvPath, "utf8");
    if (!this.changes.resolv) {
      this.changes.resolv = { path: this.resolvPath, before };
      this.save();
    }
    const kept = before.split("\n").filter((l) => /^\s*(search|domain|options)\b/.test(l));
    const ok = this.writeResolv(this.resolvPath, [`# written by trellis (${why}); the previous content comes back when exit mode ends`, `nameserver ${nameserver}`, ...kept, ""].join("\n"));
    if (ok) this.log("info", `host: ${this.resolvPath}: nameserver ${nameserver} (${why})`);
    return ok;
  }

  /** Put resolv.conf back as it was (leaving exit mode). */
  restoreResolver(): void {
    const r = this.changes.resolv;
    if (!r) return;
    if (this.writeResolv(r.path, r.before)) this.log("info", `host: ${r.path} restored`);
    delete this.changes.resolv;
    this.save();
  }

  /** Undo everything (stop). */
  stop(): void {
    const c = this.changes;
    if (c.table || c.sysctls.length || c.routes.length || c.rules.length || c.resolv) {
      this.undo(c);
      this.log("info", `host: undone: ${describe(c)}`);
      this.changes = { sysctls: [], routes: [], rules: [] };
      rmSync(this.file, { force: true });
    }
    if (this.resolvFd !== undefined) closeSync(this.resolvFd);
    this.resolvFd = undefined;
  }

  get current(): HostChanges {
    return this.changes;
  }
}

function describe(c: HostChanges): string {
  const parts = [
    ...(c.table ? [`nftables table ${c.table}`] : []),
    ...(c.sysctls ?? []).map((s) => `${s.key} back to ${s.before}`),
    ...(c.routes ?? []).map((r) => `route ${r.join(" ")}`),
    ...(c.rules ?? []).map((r) => `rule ${r.join(" ")}`),
    ...(c.resolv ? [`${c.resolv.path} as it was`] : []),
  ];
  return parts.join(", ") || "nothing";
}

/** The prefix's first host address (network address + 1), to ask the host which device reaches it. */
export function firstHost(p: Subnet): string {
  if (p.family === 4) {
    const b = p.address.split(".").map(Number);
    if (p.prefix < 32) b[3] += 1;
    return b.join(".");
  }
  return p.prefix < 128 ? `${p.address.replace(/::$/, "::")}${p.address.endsWith("::") ? "1" : ""}` : p.address;
}

/**
 * A router's LAN side, checked every CHECK_EVERY_MS: each LAN device is up (operstate), and the
 * `[routes] check` address answers a ping within CHECK_TIMEOUT_MS. Unhealthy withdraws every
 * advertised prefix (the member's next query, ≤ 250 ms later, gets an empty list).
 */
export const CHECK_EVERY_MS = 200;
export const CHECK_TIMEOUT_MS = 800;

export class LanHealth {
  private lastOk = Date.now();
  private timer?: ReturnType<typeof setInterval>;
  private inFlight = 0;
  private healthyNow = true;

  constructor(
    private readonly devices: () => string[],
    private readonly check: string | null,
    private readonly onChange: (healthy: boolean, why: string) => void,
    private readonly operstate: (dev: string) => string = (dev) => {
      try {
        return readFileSync(`/sys/class/net/${dev}/operstate`, "utf8").trim();
      } catch {
        return "missing";
      }
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), CHECK_EVERY_MS);
    this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get healthy(): boolean {
    return this.healthyNow;
  }

  private tick(): void {
    const down = this.devices().find((d) => !["up", "unknown"].includes(this.operstate(d)));
    if (this.check && this.inFlight < 5) {
      this.inFlight++;
      const p = Bun.spawn(["ping", "-n", "-q", "-c", "1", "-W", "1", this.check], { stdout: "ignore", stderr: "ignore" });
      void p.exited.then((code) => {
        this.inFlight--;
        if (code === 0) this.lastOk = Date.now();
      });
    }
    const why = down ? `LAN device ${down} is ${this.operstate(down)}` : this.check && Date.now() - this.lastOk > CHECK_TIMEOUT_MS ? `[routes] check ${this.check} does not answer` : "";
    const healthy = !why;
    if (healthy !== this.healthyNow) {
      this.healthyNow = healthy;
      this.onChange(healthy, why || "LAN side healthy again");
    }
  }
}
