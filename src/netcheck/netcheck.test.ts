// netcheck without a network: STUN messages against the seed's responder, and the verdicts for each
// kind of host (no NAT, endpoint-independent, symmetric, UDP blocked, one seed), one line each.
import { describe, expect, test } from "bun:test";
import { bindingResponse } from "../seed/stun.ts";
import { bindingRequest, mappedAddress, responseTxid, StunError } from "./stun.ts";
import { findings, formatFindings, mappingOf } from "./findings.ts";
import type { Probe, SeedProbe } from "./probe.ts";

describe("stun client", () => {
  test("the seed answers our request, and we read back the address it saw (IPv4 and IPv6)", () => {
    for (const [addr, port] of [["198.18.3.2", 40000], ["2001:db8::7", 51820]] as const) {
      const { message, txid } = bindingRequest();
      const res = bindingResponse(message, addr, port)!;
      expect(Buffer.from(responseTxid(res)!)).toEqual(Buffer.from(txid));
      expect(mappedAddress(res)).toEqual({ address: addr, port });
    }
  });

  test("padded requests of path-MTU sizes are answered with a small response", () => {
    for (const size of [48, 548, 1372, 1472]) {
      const { message } = bindingRequest(size);
      expect(message.length).toBe(size);
      const res = bindingResponse(message, "198.18.0.2", 1)!;
      expect(res).not.toBeNull();
      expect(res.length).toBeLessThanOrEqual(44);
    }
    expect(() => bindingRequest(22)).toThrow(StunError);
  });

  test("garbage is not a response", () => {
    expect(responseTxid(new Uint8Array(10))).toBeNull();
    expect(responseTxid(bindingRequest().message)).toBeNull();
    expect(() => mappedAddress(new Uint8Array(20))).toThrow(StunError);
  });
});

const seed = (host: string, udp: SeedProbe["udp"], extra: Partial<SeedProbe> = {}): SeedProbe => ({
  url: `http://${host}:7443`, host, address: host, port: 7443, tls: false, udp, http: { status: 200, first_ms: 3, rtt_ms: 1 }, mtu: udp ? 1500 : null, mtu_sent_max: udp ? 1500 : null, ...extra,
});
const seen = (address: string, port: number) => ({ rtt_ms: 1.2, mapped: { address, port } });
const probeOf = (seeds: SeedProbe[], local = { port: 40000, addresses: ["10.0.0.2", "127.0.0.1"] }): Probe => ({ local, seeds });

describe("findings", () => {
  test("no NAT: the seeds see this host's own address and port", () => {
    const p = probeOf([seed("198.18.0.2", seen("10.0.0.2", 40000)), seed("198.18.1.2", seen("10.0.0.2", 40000))]);
    expect(mappingOf(p)).toBe("none");
    expect(findings(p).find((f) => f.check === "nat")!.level).toBe("ok");
  });

  test("endpoint-independent and endpoint-dependent mappings", () => {
    const eim = probeOf([seed("198.18.0.2", seen("203.0.113.9", 5000)), seed("198.18.1.2", seen("203.0.113.9", 5000))]);
    const edm = probeOf([seed("198.18.0.2", seen("203.0.113.9", 5000)), seed("198.18.1.2", seen("203.0.113.9", 5001))]);
    expect(mappingOf(eim)).toBe("endpoint-independent");
    expect(mappingOf(edm)).toBe("endpoint-dependent");
    const f = findings(edm).find((x) => x.check === "nat")!;
    expect(f.level).toBe("warn");
    expect(f.todo).toContain("relays");
  });

  test("one seed cannot tell the mapping: says to add another", () => {
    const p = probeOf([seed("198.18.0.2", seen("203.0.113.9", 5000))]);
    expect(mappingOf(p)).toBe("unknown");
    expect(findings(p).find((x) => x.check === "nat")!.todo).toContain("second seed");
  });

  test("UDP blocked: a failure with what to do; the peer verdict follows", () => {
    const p = probeOf([seed("198.18.0.2", null), seed("198.18.1.2", null)]);
    const f = findings(p, { name: "bravo", found: true, path: "relay:ab", link: "none", underlay: null });
    expect(f.find((x) => x.check === "udp")!.level).toBe("fail");
    expect(f.find((x) => x.check === "peer")!.text).toContain("no, UDP is blocked here");
    expect(f.filter((x) => x.check === "mtu")).toEqual([]);
  });

  test("seed problems: unresolvable, refused, TLS; path MTU below 1500", () => {
    const p = probeOf([
      seed("nowhere.invalid", null, { address: null, http: { error: "DNS" } }),
      seed("198.18.1.2", seen("203.0.113.9", 5000), { http: { error: "ECONNREFUSED" } }),
      seed("198.18.2.2", seen("203.0.113.9", 5000), { tls: true, url: "https://198.18.2.2", http: { error: "unable to verify the first certificate" } }),
      seed("198.18.3.2", seen("203.0.113.9", 5000), { mtu: 1400 }),
    ]);
    const lines = formatFindings(findings(p)).trim().split("\n");
    expect(lines.some((l) => /^FAIL {2}seed http:\/\/nowhere.invalid:7443: the name nowhere.invalid does not resolve — /.test(l))).toBe(true);
    expect(lines.some((l) => /^FAIL {2}seed .*198.18.1.2.*unreachable .* — check that the seed runs/.test(l))).toBe(true);
    expect(lines.some((l) => /^FAIL {2}seed https:\/\/198.18.2.2: HTTPS TLS failed .* — the seed's certificate is not trusted/.test(l))).toBe(true);
    expect(lines.some((l) => /^info {2}path MTU to 198.18.3.2:7443: 1400 bytes/.test(l))).toBe(true);
    // Every finding is one line.
    for (const l of lines) expect(l).toMatch(/^(ok  |WARN|FAIL|info)  \S/);
  });

  test("a direct link that is up is reported as up", () => {
    const p = probeOf([seed("198.18.0.2", seen("203.0.113.9", 5000))]);
    const f = findings(p, { name: "bravo", found: true, path: "direct", link: "open", underlay: "198.18.2.2:4000 srflx" });
    expect(f.find((x) => x.check === "peer")).toEqual({ check: "peer", level: "ok", text: "direct link to bravo: up now (198.18.2.2:4000 srflx)", todo: "" });
  });

  test("no seeds: says where to add them", () => {
    expect(findings(probeOf([]))[0].todo).toContain("[network] seeds");
  });
});
