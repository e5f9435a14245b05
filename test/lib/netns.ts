// Test networks in Linux network namespaces: hosts, a router between subnets, NAT and blocks.
//
// Everything made here is named with one prefix (`trl-<tag>-`) and removed by name in `destroy()`.
// Nothing touches the host's own namespace: veth pairs are created inside the router namespace and
// their other end is moved straight into the host namespace. Addresses come from 198.18.0.0/15
// (RFC 2544 benchmarking range), one /24 per subnet; the router is .1 on each.
import { spawnSync } from "node:child_process";

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
  private subnets = 0;

  constructor(tag: string) {
    this.prefix = `trl-${tag}-${process.pid % 100000}`;
    this.router = `${this.prefix}-r`;
    TestNet.removeByPrefix(this.prefix);
    this.addNs(this.router);
    sh(["ip", "netns", "exec", this.router, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  }

  /** Remove every namespace whose name starts with `prefix` (leftovers of a crashed run too). */
  static removeByPrefix(prefix: string): void {
    for (const line of sh(["ip", "netns", "list"], { allowFail: true }).split("\n")) {
      const name = line.split(" ")[0];
      if (name && name.startsWith(prefix)) sh(["ip", "netns", "del", name], { allowFail: true });
    }
  }

  private addNs(ns: string): void {
    sh(["ip", "netns", "add", ns]);
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

  destroy(): void {
    TestNet.removeByPrefix(this.prefix);
  }
}
