// Host changes for routes: the nftables ruleset, sysctls remembered and restored, a crashed run's leftovers undone.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstHost, HostRoutes, LanHealth, snatRuleset, tableName, type Runner } from "./hostnet.ts";

/** A fake host: sysctls in a map, every command recorded. */
function fakeHost() {
  const sysctls = new Map([["net.ipv4.conf.trellis0.forwarding", "0"], ["net.ipv4.conf.lan0.forwarding", "0"]]);
  const cmds: string[] = [];
  const runner: Runner = {
    run(cmd) {
      cmds.push(cmd.join(" "));
      if (cmd[0] === "cat") {
        const key = cmd[1].replace("/proc/sys/", "").replace(/\//g, ".");
        const v = sysctls.get(key);
        return v === undefined ? { ok: false, out: "", err: "no such file" } : { ok: true, out: v + "\n", err: "" };
      }
      if (cmd[0] === "sysctl") {
        const [k, v] = cmd[2].split("=");
        sysctls.set(k, v);
      }
      if (cmd.join(" ") === "ip -j route get 192.168.50.1") return { ok: true, out: JSON.stringify([{ dst: "192.168.50.1", dev: "lan0" }]), err: "" };
      return { ok: true, out: "", err: "" };
    },
  };
  return { sysctls, cmds, runner };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "trellis-hostnet-"));
  dirs.push(d);
  return d;
};
const quiet = () => {};
const lan = { family: 4 as const, address: "192.168.50.0", prefix: 24 };

describe("host changes for a router", () => {
  test("the SNAT ruleset is one table masquerading what leaves the TUN for the prefixes", () => {
    expect(tableName("trellis0")).toBe("trellis_trellis0");
    expect(tableName("tr.x-1")).toBe("trellis_tr_x_1");
    const r = snatRuleset("trellis_trellis0", "trellis0", [lan, { family: 6, address: "fd00:1::", prefix: 64 }], ["eth0", "eth0"]);
    expect(r).toContain('iifname "trellis0" ip daddr { 192.168.50.0/24 } masquerade');
    expect(r).toContain('iifname "trellis0" ip6 daddr { fd00:1::/64 } masquerade');
    expect(r).toContain('iifname "trellis0" oifname "eth0" masquerade');
    expect(r.match(/oifname/g)?.length).toBe(1); // one rule per uplink device, both families
    expect(r.startsWith("table inet trellis_trellis0 {")).toBe(true);
    expect(firstHost(lan)).toBe("192.168.50.1");
  });

  test("an exit's table drops overlay sources to its own overlay addresses that arrive off the TUN (spoofed from the LAN/WAN side)", () => {
    const own = { ipv6: "fd74:7265:6c6c:1:2:3:4:5", ipv4: [{ address: "100.64.0.30", prefix: 24 }, { address: "10.9.8.7", prefix: 12 }] };
    const r = snatRuleset("trellis_trellis0", "trellis0", [], ["up1"], own);
    expect(r).toContain("type filter hook input priority -10; policy accept;");
    expect(r).toContain('iifname != { "lo", "trellis0" } ip6 saddr fd74:7265:6c6c::/48 ip6 daddr fd74:7265:6c6c:1:2:3:4:5 drop');
    expect(r).toContain('iifname != { "lo", "trellis0" } ip saddr { 100.64.0.0/24, 10.0.0.0/12 } ip daddr { 100.64.0.30, 10.9.8.7 } drop');
    expect(snatRuleset("t", "trellis0", [], ["up1"])).not.toContain("input"); // a router that is no exit: as before
    // An exit makes its table even with no uplink yet (the guard alone).
    const h = fakeHost();
    new HostRoutes(tmp(), "trellis0", quiet, h.runner).router([], true, undefined, undefined, own);
    expect(h.cmds).toContain("nft -f -");
  });

  test("start sets forwarding on the TUN and the LAN device only and makes the table; stop restores both", () => {
    const h = fakeHost();
    const dir = tmp();
    const host = new HostRoutes(dir, "trellis0", quiet, h.runner);
    const devs = host.router([lan], true);
    expect([...devs]).toEqual([["192.168.50.0/24", "lan0"]]);
    expect(h.sysctls.get("net.ipv4.conf.trellis0.forwarding")).toBe("1");
    expect(h.sysctls.get("net.ipv4.conf.lan0.forwarding")).toBe("1");
    expect(h.sysctls.has("net.ipv4.ip_forward")).toBe(false);
    expect(h.cmds).toContain("nft -f -");
    expect(existsSync(join(dir, "host-routes.json"))).toBe(true);
    host.stop();
    expect(h.sysctls.get("net.ipv4.conf.lan0.forwarding")).toBe("0");
    expect(h.cmds).toContain("nft delete table inet trellis_trellis0");
    expect(existsSync(join(dir, "host-routes.json"))).toBe(false);
  });

  test("a crashed run's changes are undone by the next start, and only once", () => {
    const h = fakeHost();
    const dir = tmp();
    new HostRoutes(dir, "trellis0", quiet, h.runner).router([lan], true);
    // ... the process dies here: nothing undone.
    expect(h.sysctls.get("net.ipv4.conf.lan0.forwarding")).toBe("1");
    h.cmds.length = 0;
    const next = new HostRoutes(dir, "trellis0", quiet, h.runner);
    next.recover();
    expect(h.sysctls.get("net.ipv4.conf.lan0.forwarding")).toBe("0");
    expect(h.cmds).toContain("nft delete table inet trellis_trellis0");
    h.cmds.length = 0;
    next.recover();
    expect(h.cmds).toEqual([]);
  });

  test("routes outside the TUN are recorded and removed; routes on the TUN vanish with it", () => {
    const h = fakeHost();
    const dir = tmp();
    const host = new HostRoutes(dir, "trellis0", quiet, h.runner);
    host.addRoute(["192.168.50.0/24", "dev", "trellis0"], true);
    host.addRoute(["198.18.0.2/32", "via", "10.0.0.1"], false);
    expect(host.current.routes).toEqual([["198.18.0.2/32", "via", "10.0.0.1"]]);
    h.cmds.length = 0;
    host.stop();
    expect(h.cmds).toEqual(["ip route del 198.18.0.2/32 via 10.0.0.1"]);
  });
});

describe("exit nodes and exit DNS on the host", () => {
  test("an exit with an IPv6 uplink turns IPv6 forwarding on host-wide, keeps the uplink's RAs, masquerades both; stop restores", () => {
    const h = fakeHost();
    h.sysctls.set("net.ipv4.conf.up1.forwarding", "0");
    h.sysctls.set("net.ipv6.conf.all.forwarding", "0");
    h.sysctls.set("net.ipv6.conf.up6.accept_ra", "1");
    const host = new HostRoutes(tmp(), "trellis0", quiet, h.runner);
    host.router([], true, "up1", "up6");
    expect(h.sysctls.get("net.ipv4.conf.up1.forwarding")).toBe("1");
    expect(h.sysctls.get("net.ipv6.conf.all.forwarding")).toBe("1");
    expect(h.sysctls.get("net.ipv6.conf.up6.accept_ra")).toBe("2");
    expect(h.sysctls.has("net.ipv4.conf.up6.forwarding")).toBe(false);
    host.stop();
    expect(h.sysctls.get("net.ipv6.conf.all.forwarding")).toBe("0");
    expect(h.sysctls.get("net.ipv6.conf.up6.accept_ra")).toBe("1");
    expect(h.sysctls.get("net.ipv4.conf.up1.forwarding")).toBe("0");
  });

  test("a router for an IPv6 prefix turns IPv6 forwarding on host-wide (no per-device switch exists), and only IPv4 keys for IPv4", () => {
    const h = fakeHost();
    h.sysctls.set("net.ipv6.conf.all.forwarding", "0");
    const host = new HostRoutes(tmp(), "trellis0", quiet, h.runner);
    host.router([{ family: 6, address: "fd00:1::", prefix: 64 }], true);
    expect(h.sysctls.get("net.ipv6.conf.all.forwarding")).toBe("1");
    expect(h.sysctls.get("net.ipv4.conf.trellis0.forwarding")).toBe("0");
    host.stop();
    expect(h.sysctls.get("net.ipv6.conf.all.forwarding")).toBe("0");
  });

  test("exit_dns rewrites resolv.conf in place (search and options kept) and puts it back on stop and after a crash", () => {
    const dir = tmp();
    const path = join(dir, "resolv.conf");
    const before = "search lab.example\nnameserver 10.0.0.53\noptions edns0\n";
    writeFileSync(path, before);
    const h = fakeHost();
    const host = new HostRoutes(dir, "trellis0", quiet, h.runner);
    expect(host.openResolv(path)).toBe(true);
    expect(host.setResolver("100.64.0.30", "exit node x")).toBe(true);
    const now = readFileSync(path, "utf8");
    expect(now).toContain("nameserver 100.64.0.30\n");
    expect(now).not.toContain("10.0.0.53");
    expect(now).toContain("search lab.example");
    expect(now).toContain("options edns0");
    host.setResolver("100.64.0.31", "exit node y"); // a failover: the first content is what comes back
    host.stop();
    expect(readFileSync(path, "utf8")).toBe(before);
    // A crash: the next start's recover() writes it back.
    const crashed = new HostRoutes(dir, "trellis0", quiet, h.runner);
    crashed.openResolv(path);
    crashed.setResolver("100.64.0.30", "exit node x");
    new HostRoutes(dir, "trellis0", quiet, h.runner).recover();
    expect(readFileSync(path, "utf8")).toBe(before);
  });

  test("a resolv.conf that is a symlink (managed by another tool) is left alone", () => {
    const dir = tmp();
    writeFileSync(join(dir, "stub"), "nameserver 127.0.0.53\n");
    symlinkSync(join(dir, "stub"), join(dir, "resolv.conf"));
    const warned: string[] = [];
    const host = new HostRoutes(dir, "trellis0", (_l, m) => warned.push(m), fakeHost().runner);
    expect(host.openResolv(join(dir, "resolv.conf"))).toBe(false);
    expect(host.setResolver("100.64.0.30", "x")).toBe(false);
    expect(warned.join()).toContain("symlink");
    expect(readFileSync(join(dir, "stub"), "utf8")).toBe("nameserver 127.0.0.53\n");
  });
});

describe("LAN health", () => {
  test("a LAN device that goes down is reported at once, and its return too", async () => {
    let state = "up";
    const changes: [boolean, string][] = [];
    const h = new LanHealth(() => ["lan0"], null, (ok, why) => changes.push([ok, why]), () => state);
    h.start();
    expect(h.healthy).toBe(true);
    state = "down";
    await Bun.sleep(250);
    expect(h.healthy).toBe(false);
    state = "up";
    await Bun.sleep(250);
    h.stop();
    expect(changes).toEqual([[false, "LAN device lan0 is down"], [true, "LAN side healthy again"]]);
  });
});
