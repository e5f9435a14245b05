// Config loading: defaults, every key, and errors that name the key, the file and the line.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig, parseConfig } from "./load.ts";

const F = "/etc/trellis/test.toml";
function err(text: string): ConfigError {
  try {
    parseConfig(text, F);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("config", () => {
  test("an empty file gives the defaults", () => {
    const c = parseConfig("", F);
    expect(c.tun).toEqual({ name: "trellis0", mtu: "auto" });
    expect(c.api.listen).toEqual({ host: "127.0.0.1", port: 7080 });
    expect(c.relay).toEqual({ enabled: false, seed: true, listen: { host: "0.0.0.0", port: 7443 }, maxPeers: 64, bandwidthBps: 0, tlsCert: null, tlsKey: null, networks: null });
    expect(c.node.stateDir).toBe("/var/lib/trellis");
    expect(c.node.idleTimeoutMs).toBe(60000);
    expect(c.node.name).toMatch(/^[a-z0-9-]+$/);
  });

  test("[routes]: defaults, prefixes, and bad values named", () => {
    expect(parseConfig("", F).routes).toEqual({ advertise: [], snat: true, accept: false, check: null, exit: false, exitNode: null, exitDns: false });
    const c = parseConfig('[routes]\nadvertise = ["192.168.50.0/24", "fd00:1::/64"]\nsnat = false\naccept = true\ncheck = "192.168.50.1"\nexit = true\nexit_node = "auto"\nexit_dns = true\n', F);
    expect(c.routes).toEqual({ advertise: [{ family: 4, address: "192.168.50.0", prefix: 24 }, { family: 6, address: "fd00:1::", prefix: 64 }], snat: false, accept: true, check: "192.168.50.1", exit: true, exitNode: "auto", exitDns: true });
    const e = err('[routes]\nadvertise = ["192.168.50.1/24"]\n');
    expect(e.message).toContain("[routes] advertise");
    expect(e.message).toContain("no bits set past the prefix length");
    expect(e.line).toBe(2);
    expect(err('[routes]\ncheck = "lan"\n').key).toBe("[routes] check");
    expect(err('[routes]\nexit_node = "Not A Name"\n').key).toBe("[routes] exit_node");
  });

  test("every key with a good value", () => {
    const c = parseConfig(
      `[node]\nname = "alpha"\nstate_dir = "/tmp/x"\nipv4 = "100.64.0.2/24"\nidle_timeout = "5m"\nlog_level = "debug"\n` +
        `[network]\nseeds = ["http://198.18.0.2:7443", "https://seed.example.net", "https://203.0.113.7:443#sha256=${"AB:".repeat(31)}AB"]\nallow = ["8643D9F24BAE2B468337ED99E5C45424"]\nca = "/etc/trellis/ca.pem"\n` +
        `[tun]\nname = "tl0"\nmtu = 1420\n[relay]\nenabled = true\nlisten = "[::]:7443"\nmax_peers = 10\nbandwidth = "100mbit"\ntls_cert = "/etc/c.pem"\ntls_key = "/etc/k.pem"\nnetworks = ["8643D9F24BAE2B468337ED99E5C45424"]\n[api]\nlisten = "127.0.0.1:9000"\n`,
      F,
    );
    expect(c.node).toEqual({ name: "alpha", stateDir: "/tmp/x", ipv4: { address: "100.64.0.2", prefix: 24 }, idleTimeoutMs: 300000, logLevel: "debug" });
    expect(c.network).toEqual({
      seeds: ["http://198.18.0.2:7443", "https://seed.example.net", `https://203.0.113.7#sha256=${"ab".repeat(32)}`],
      allow: ["8643d9f24bae2b468337ed99e5c45424"],
      ca: "/etc/trellis/ca.pem",
    });
    expect(c.tun).toEqual({ name: "tl0", mtu: 1420 });
    expect(c.relay).toEqual({ enabled: true, seed: true, listen: { host: "::", port: 7443 }, maxPeers: 10, bandwidthBps: 100e6, tlsCert: "/etc/c.pem", tlsKey: "/etc/k.pem", networks: ["8643d9f24bae2b468337ed99e5c45424"] });
    // A certificate without its key (or the reverse) names the key that is there.
    expect(err(`[relay]\ntls_cert = "/etc/c.pem"\n`).message).toContain("needs [relay] tls_key");
    // A pin is 64 hex digits on an https:// seed.
    expect(err(`[network]\nseeds = ["https://h:1#sha256=abcd"]\n`).message).toContain("sha256=FINGERPRINT");
    expect(err(`[network]\nseeds = ["http://h:1#sha256=${"ab".repeat(32)}"]\n`).message).toContain("sha256=FINGERPRINT");
    expect(c.api.listen).toEqual({ host: "127.0.0.1", port: 9000 });
    expect(parseConfig(`[node]\nipv4 = "100.64.0.9"\nidle_timeout = 30`, F).node).toMatchObject({ ipv4: { address: "100.64.0.9", prefix: 10 }, idleTimeoutMs: 30000 });
  });

  test("an unknown section or key names itself and its line", () => {
    const e1 = err(`[node]\nname = "a"\n\n[nodes]\nx = 1\n`);
    expect(e1.code).toBe("unknown-key");
    expect(e1.message).toStartWith(`${F}:4: [nodes]: unknown section`);
    const e2 = err(`[node]\nname = "a"\n# comment\nnmae = "b"\n`);
    expect(e2.message).toStartWith(`${F}:4: [node] nmae: unknown key`);
    const e3 = err(`top = 1\n`);
    expect(e3.message).toStartWith(`${F}:1: [top]: unknown section`);
  });

  test("wrong types are named with the key and line", () => {
    const cases: [string, number, string][] = [
      [`[relay]\nmax_peers = "ten"`, 2, "[relay] max_peers"],
      [`[relay]\n\nenabled = "yes"`, 3, "[relay] enabled"],
      [`[network]\nseeds = "http://a:1"`, 2, "[network] seeds"],
      [`[node]\nname = 5`, 2, "[node] name"],
      [`[tun]\nmtu = true`, 2, "[tun] mtu"],
    ];
    for (const [text, line, key] of cases) {
      const e = err(text);
      expect(e.code).toBe("type");
      expect(e.message).toStartWith(`${F}:${line}: ${key}: expected`);
    }
  });

  test("bad values are named with the key, line and value", () => {
    const cases: [string, string, string][] = [
      [`[node]\nname = "Not Valid"`, "[node] name", `"Not Valid"`],
      [`[node]\nipv4 = "300.1.1.1"`, "[node] ipv4", `"300.1.1.1"`],
      [`[node]\nipv4 = "127.0.0.1"`, "[node] ipv4", "loopback"],
      [`[node]\nipv4 = "100.64.0.1/33"`, "[node] ipv4", "/33"],
      [`[node]\nidle_timeout = "soon"`, "[node] idle_timeout", `"soon"`],
      [`[node]\nlog_level = "loud"`, "[node] log_level", `"loud"`],
      [`[network]\nseeds = ["http://ok:1", "ftp://x:2"]`, "[network] seeds", "entry 1"],
      [`[network]\nallow = ["abc"]`, "[network] allow", "entry 0"],
      [`[network]\nallow_ipv4 = { "${"a".repeat(32)}" = "192.168.1.300" }`, "[network] allow_ipv4", "192.168.1.300"],
      [`[network]\nallow_ipv4 = { "${"a".repeat(32)}" = "100.64.0.5", "${"b".repeat(32)}" = "100.64.0.5" }`, "[network] allow_ipv4", "different address"],
      [`[tun]\nname = "a/b"`, "[tun] name", `"a/b"`],
      [`[tun]\nname = "sixteen-chars-xx"`, "[tun] name", "sixteen"],
      [`[tun]\nmtu = 100`, "[tun] mtu", "100"],
      [`[relay]\nlisten = "0.0.0.0:99999"`, "[relay] listen", "99999"],
      [`[relay]\nmax_peers = 0`, "[relay] max_peers", "0"],
      [`[relay]\nbandwidth = "fast"`, "[relay] bandwidth", `"fast"`],
      [`[api]\nlisten = "localhost"`, "[api] listen", `"localhost"`],
    ];
    for (const [text, key, shown] of cases) {
      const e = err(text);
      expect(e.code).toBe("value");
      expect(e.message).toStartWith(`${F}:2: ${key}: `);
      expect(e.message).toContain(shown);
    }
  });

  test("[network] allow_ipv4 pins allow-listed peers' addresses", () => {
    const c = parseConfig(`[network]\nallow_ipv4 = { "${"A".repeat(32)}" = "100.64.0.5" }\n`, F);
    expect(c.network.allowIpv4).toEqual({ ["a".repeat(32)]: "100.64.0.5" });
  });

  test("TOML syntax errors name the file", () => {
    const e = err(`[node]\nname = "a\n`);
    expect(e.code).toBe("syntax");
    expect(e.message).toStartWith(F);
  });

  test("a missing explicit file is an io error; a missing default file means defaults", () => {
    expect(() => loadConfig("/nonexistent/trellis.toml")).toThrow(/nonexistent\/trellis.toml: no such file/);
  });

  test("the annotated examples in config/ parse", () => {
    for (const f of ["trellis.toml", "seed.toml"]) {
      const path = join(import.meta.dir, "../../config", f);
      expect(() => parseConfig(readFileSync(path, "utf8"), path)).not.toThrow();
    }
    expect(loadConfig(join(import.meta.dir, "../../config/seed.toml")).relay.enabled).toBe(true);
  });
});

describe("[paths]", () => {
  test("weights and the decision log parse; defaults otherwise", () => {
    expect(parseConfig("", F).paths).toEqual({ weights: { latency: 0.5, loss: 0.3, goodput: 0.2 }, decisionLog: null, decisionLogMaxBytes: 10 * 1024 * 1024 });
    const c = parseConfig(`[paths]\nlatency_weight = 0.1\nloss_weight = 0.2\ngoodput_weight = 0.7\ndecision_log = "/var/log/trellis/decisions.jsonl"\ndecision_log_max = "5mb"\n`, F);
    expect(c.paths).toEqual({ weights: { latency: 0.1, loss: 0.2, goodput: 0.7 }, decisionLog: "/var/log/trellis/decisions.jsonl", decisionLogMaxBytes: 5 * 1024 * 1024 });
  });

  test("bad weights and sizes name the key and line", () => {
    expect(err(`[paths]\n\nlatency_weight = 2\n`).message).toBe("/etc/trellis/test.toml:3: [paths] latency_weight: expected a number from 0 to 1, got 2");
    expect(err(`[paths]\ngoodput_weight = "lots"\n`).message).toContain("goodput_weight");
    expect(err(`[paths]\ndecision_log_max = "1tb"\n`).message).toContain("decision_log_max");
  });
});
