// Allow-list mode (issue 14, 9): what an allow-listed peer may claim as its IPv4 address.
import { describe, expect, test } from "bun:test";
import type { NodeId } from "../identity/identity.ts";
import { PeerTable, type Ipv4ClaimRules } from "./peers.ts";

const A = "a".repeat(32) as NodeId, B = "b".repeat(32) as NodeId, C = "c".repeat(32) as NodeId;
const rules = (pinned: [NodeId, string][] = []): Ipv4ClaimRules => ({ prefixes: [{ address: "100.64.0.1", prefix: 10 }], own: ["100.64.0.1"], pinned: new Map(pinned) });

describe("unsigned IPv4 claims", () => {
  // The attack: a peer claimed 192.168.1.1 (a LAN address), or ours, and traffic for it went to that peer.
  test("only inside the overlay prefix, never our own address, never another peer's", () => {
    const peers = new PeerTable();
    expect(peers.applyClaims(A, { ipv4: "192.168.1.1" }, rules())).toMatch(/outside the overlay prefix/);
    expect(peers.get(A)!.ipv4).toBeUndefined();
    expect(peers.byIpv4Key(0xc0a80101)).toBeUndefined();
    expect(peers.applyClaims(A, { ipv4: "100.64.0.1" }, rules())).toMatch(/own address/);
    expect(peers.applyClaims(A, { ipv4: "100.128.0.1" }, rules())).toMatch(/outside/); // just past 100.64.0.0/10
    expect(peers.applyClaims(A, { ipv4: "100.64.0.7" }, rules())).toBeUndefined();
    expect(peers.applyClaims(B, { ipv4: "100.64.0.7" }, rules())).toMatch(/already held/);
    expect(peers.get(A)!.ipv4).toBe("100.64.0.7");
  });

  test("no overlay prefix configured: no claim is taken", () => {
    const peers = new PeerTable();
    expect(peers.applyClaims(A, { ipv4: "100.64.0.7" }, { prefixes: [], own: [], pinned: new Map() })).toMatch(/no overlay IPv4 prefix/);
    expect(peers.get(A)!.ipv4).toBeUndefined();
  });

  test("[network] allow_ipv4 pins a peer's address: its claim is ignored, nobody else may take it", () => {
    const peers = new PeerTable();
    const r = rules([[A, "100.64.0.5"]]);
    expect(peers.applyClaims(B, { ipv4: "100.64.0.5" }, r)).toMatch(/pinned to/);
    expect(peers.applyClaims(A, { ipv4: "100.64.0.9" }, r)).toMatch(/pins for it/);
    expect(peers.get(A)!.ipv4).toBe("100.64.0.5");
    expect(peers.applyClaims(C, {}, r)).toBeUndefined();
    expect(peers.get(C)!.ipv4).toBeUndefined();
  });
});
