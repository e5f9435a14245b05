// Test networks in Linux network namespaces: hosts, a router between subnets, NAT and blocks.
//
// Everything made here is named `trl-<tag>-<pid>-<random>-<host>`, recorded, and removed by exact
// name in `destroy()`: two runs at once (or two files in one run) never share or delete each other's
// namespaces. Leftovers of a crashed run (its pid no longer alive) are swept when a TestNet starts.
// Nothing touches the host's own namespace: veth pairs are created inside the router namespace and
// their other end is moved straight into the host namespace. Addresses come from 198.18.0.0/15
// (RFC 2544 benchmarking range), one /24 per subnet; the router is .1 on each.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";

export class NetnsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NetnsError";
  }
}

/** Run a command; throw with its stderr if it fails. */
export function sh(cmd: string[], opts: { allowFail?: boolean; input?: string } = {}): string {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", input: opts.input });
  if (r.status !== 0 && !opts.allowFail)
    throw new NetnsError(`${cmd.join(" ")} failed (${r.status}): ${(r.stderr || r.stdout || "").trim()}`);
  return r.stdout ?? "";
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Why tests in namespaces cannot run here, or null when they can (root, /dev/net/tun, `ip`). */
export function e2eBlocker(): string | null {
  if (!isRoot()) return "not running as root";
  if (!existsSync("/dev/net/tun")) return "no /dev/net/tun";
  if (spawnSync("ip", ["netns", "list"]).status !== 0) return "`ip netns` does not work";
  return null;
}

let warned = false;
/**
 * Whether `what` (an e2e file) can run. When it cannot, say so loudly on stderr (once per process,
 * then one line per file) instead of skipping in silence; with TRELLIS_REQUIRE_E2E=1 (set by .ci/run)
 * a failing test is registered too, so CI cannot pass with the e2e tests skipped.
 */
export function e2eReady(what: string): boolean {
  const why = e2eBlocker();
  if (!why) return true;
  if (!warned) {
    warned = true;
    const bar = "!".repeat(78);
    console.error(`\n${bar}\n!! e2e tests SKIPPED: ${why}.\n!! They need root and /dev/net/tun (network namespaces, TUN devices). This run\n!! did NOT test real nodes; run \`sudo npm test\` (CI runs as root).\n${bar}\n`);
  }
  console.error(`!! skipped (${why}): ${what}`);
  if (process.env.TRELLIS_REQUIRE_E2E === "1") {
    // bun:test is imported lazily so that this module stays usable outside tests (bench, demo).
    const { test } = require("bun:test");
    test(`e2e prerequisites for ${what}`, () => {
      throw new Error(`e2e tests cannot run: ${why} (TRELLIS_REQUIRE_E2E=1)`);
    });
  }
  return false;
}

/** A name unique to this process and call: `<tag>-<pid>-<4 hex>`. */
export function uniqueName(tag: string): string {
  return `${tag}-${process.pid}-${randomBytes(2).toString("hex")}`;
}

/** Names `trl-<tag>-<pid>-<hex>...` whose pid no longer runs: leftovers of a crashed run. */
function sweepDead(): void {
  for (const line of sh(["ip", "netns", "list"], { allowFail: true }).split("\n")) {
    const name = line.split(" ")[0];
    const m = /^trl-[a-z0-9]+-(\d+)-[0-9a-f]{4}(-|$)/.exec(name ?? "");
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (e: any) {
      alive = e?.code === "EPERM";
    }
    if (!alive) sh(["ip", "netns", "del", name], { allowFail: true });
  }
}

export interface Host {
  /** Short name in the test (`a`, `seed`, ...). */
  name: string;
  /** Namespace name. */
  ns: string;
  /** Address on its subnet. */
  ip: string;
  subnet: number;
}

export class TestNet {
  readonly prefix: string;
  readonly router: string;
  readonly hosts = new Map<string, Host>();
  /** Every namespace this TestNet made, by exact name: what destroy() removes. */
  readonly made: string[] = [];
  private subnets = 0;

  constructor(tag: string) {
    if (!/^[a-z0-9]+$/.test(tag)) throw new NetnsError(`tag ${JSON.stringify(tag)}: use [a-z0-9]`);
    sweepDead();
    this.prefix = `trl-${uniqueName(tag)}`;
    this.router = `${this.prefix}-r`;
    this.addNs(this.router);
    sh(["ip", "netns", "exec", this.router, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  }

  private addNs(ns: string): void {
    sh(["ip", "netns", "add", ns]);
    this.made.push(ns);
    sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
  }

  /** A host on its own /24 behind the router: 198.18.<subnet>.2, gateway .1. */
  addHost(name: string): Host {
    const subnet = this.subnets++;
    const ns = `${this.prefix}-${name}`;
    this.addNs(ns);
    const rIf = `h${subnet}`;
    sh(["ip", "-n", this.router, "link", "add", rIf, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    sh(["ip", "-n", this.router, "addr", "add", `198.18.${subnet}.1/24`, "dev", rIf]);
    sh(["ip", "-n", this.router, "link", "set", rIf, "up"]);
    sh(["ip", "-n", ns, "addr", "add", `198.18.${subnet}.2/24`, "dev", "eth0"]);
    sh(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    sh(["ip", "-n", ns, "route", "add", "default", "via", `198.18.${subnet}.1`]);
    const host = { name, ns, ip: `198.18.${subnet}.2`, subnet };
    this.hosts.set(name, host);
    return host;
  }

  /**
   * A host behind its own NAT, like a home router: the NAT namespace sits on the router as a host
   * (198.18.<subnet>.2, the host's public address) and masquerades for a private LAN 10.200.<subnet>.0/24
   * where the host is .2. Unsolicited input from the WAN is dropped silently (ct state new, forwarded or
   * to the NAT itself), as real routers do: no ICMP "port unreachable" to spoil hole punching.
   * `symmetric`: every new outside destination gets a fresh random port (fully-random masquerade), so
   * hole punching with a port-restricted NAT fails, as it does in the wild.
   */
  addNatHost(name: string, symmetric = false): Host {
    const nat = this.addHost(`${name}nat`);
    this.hosts.delete(`${name}nat`);
    const ns = `${this.prefix}-${name}`;
    this.addNs(ns);
    const s = nat.subnet;
    sh(["ip", "-n", nat.ns, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", ns]);
    sh(["ip", "-n", nat.ns, "addr", "add", `10.200.${s}.1/24`, "dev", "lan0"]);
    sh(["ip", "-n", nat.ns, "link", "set", "lan0", "up"]);
    sh(["ip", "-n", ns, "addr", "add", `10.200.${s}.2/24`, "dev", "eth0"]);
    sh(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    sh(["ip", "-n", ns, "route", "add", "default", "via", `10.200.${s}.1`]);
    sh(["ip", "netns", "exec", nat.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    const rules = `table ip trl_nat {\n chain post {\n  type nat hook postrouting priority 100;\n  oifname "eth0" masquerade${symmetric ? " fully-random" : ""}\n }\n chain wan_in {\n  type filter hook forward priority 0; policy accept;\n  iifname "eth0" ct state established,related accept\n  iifname "eth0" drop\n }\n chain wan_local {\n  type filter hook input priority 0; policy accept;\n  iifname "eth0" ct state established,related accept\n  iifname "eth0" drop\n }\n}\n`;
    sh(["ip", "netns", "exec", nat.ns, "nft", "-f", "-"], { input: rules });
    const host = { name, ns, ip: `10.200.${s}.2`, subnet: s };
    this.hosts.set(name, host);
    return host;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new NetnsError(`no host ${name} in ${this.prefix}`);
    return h;
  }

  /** Run a command inside a host's namespace. */
  exec(name: string, cmd: string[], opts: { allowFail?: boolean } = {}): string {
    return sh(["ip", "netns", "exec", this.host(name).ns, ...cmd], opts);
  }

  /** Drop all forwarding between two hosts' subnets at the router (nftables), or lift it. */
  block(a: string, b: string, on = true): void {
    const table = `block_${a}_${b}`.replace(/[^a-z0-9_]/gi, "_");
    if (!on) {
      sh(["ip", "netns", "exec", this.router, "nft", "delete", "table", "inet", table], { allowFail: true });
      return;
    }
    const sa = `198.18.${this.host(a).subnet}.0/24`, sb = `198.18.${this.host(b).subnet}.0/24`;
    const rules = `table inet ${table} {\n chain blocked {\n  type filter hook forward priority 0; policy accept;\n  ip saddr ${sa} ip daddr ${sb} drop\n  ip saddr ${sb} ip daddr ${sa} drop\n }\n}\n`;
    sh(["ip", "netns", "exec", this.router, "nft", "-f", "-"], { input: rules });
  }

  /** Remove exactly the namespaces this TestNet made. */
  destroy(): void {
    for (const ns of this.made.splice(0).reverse()) sh(["ip", "netns", "del", ns], { allowFail: true });
  }
}
