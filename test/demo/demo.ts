// The README's first command: a small trellis network in namespaces, a ping and a transfer across it.
//
//   seed (198.18.0.2) ─┐
//   alpha (198.18.1.2) ─┼─ router ── each host on its own subnet
//   bravo (198.18.2.2) ─┘
// alpha and bravo find each other through the seed's signalling, link over WebRTC, agree keys with
// ML-KEM-768 + X25519 signed by ML-DSA-65, and carry IP through their TUN interfaces.
import { isRoot, sh, TestNet } from "../lib/netns.ts";
import { BUN, pairWithSeed, ROOT, TestNode, removeDir, tempDir, waitFor } from "../lib/nodes.ts";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { readFileSync } from "node:fs";

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => console.log(`\n${bold("==> " + s)}`);
const indent = (s: string) => s.trimEnd().split("\n").map((l) => "    " + l).join("\n");

if (!isRoot()) {
  console.error("demo: needs root (it makes network namespaces and TUN devices)");
  process.exit(1);
}

const dir = tempDir("demo");
const net = new TestNet("demo");
const nodes: TestNode[] = [];
let ok = false;
const cleanup = async () => {
  for (const n of nodes) await n.stop().catch(() => {});
  net.destroy();
  removeDir(dir);
};
process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));

try {
  step("Building the network (a router namespace, three hosts on separate subnets) and identities");
  const { seed, a, b } = pairWithSeed(net, dir);
  nodes.push(seed, a, b);
  for (const h of net.hosts.values()) console.log(`    ${h.ns.padEnd(22)} ${h.ip}`);
  console.log("    identities: ML-DSA-65 + ML-KEM-768 + X25519, made locally");
  for (const n of [seed, a, b]) console.log(`    ${n.spec.name.padEnd(6)} ${n.id}  ${n.ipv6}${n.spec.ipv4 ? "  " + n.spec.ipv4 : ""}`);
  console.log(`\n    alpha's config (${a.configPath}):\n${indent(readFileSync(a.configPath, "utf8"))}`);

  step("Starting the seed, then alpha and bravo (trellis up)");
  await seed.start();
  await Promise.all([a.start(), b.start()]);
  const t0 = Date.now();
  await waitFor("alpha ↔ bravo session", () => a.api("/v1/status").peers?.find((p: any) => p.id === b.id && p.session && p.ipv4), 30000);
  console.log(`    link and post-quantum session up in ${Date.now() - t0} ms`);

  step("trellis status on alpha");
  console.log(indent(a.cli(["status", "--config", a.configPath]).out));

  step("ping bravo from alpha over the overlay (IPv6, then IPv4) through the TUN");
  console.log(indent(sh(["ip", "netns", "exec", a.ns, "ping", "-c", "3", "-i", "0.3", b.ipv6], { allowFail: true })));
  console.log(indent(sh(["ip", "netns", "exec", a.ns, "ping", "-c", "3", "-i", "0.3", "100.64.0.3"], { allowFail: true })));

  step("trellis ping bravo (end to end inside the session)");
  console.log(indent(a.cli(["ping", "bravo", "--count", "3", "--interval", "0.3", "--config", a.configPath]).out));

  step("A 20 MB TCP transfer from alpha to bravo, checked by SHA-256");
  const tool = join(ROOT, "test/lib/tcp.ts");
  const server = spawn("ip", ["netns", "exec", b.ns, BUN, tool, "serve", "5201"], { stdio: ["ignore", "pipe", "ignore"] });
  let got = "";
  server.stdout.on("data", (d) => (got += d));
  const done = new Promise((r) => server.on("exit", r));
  await waitFor("tcp server", () => sh(["ip", "netns", "exec", b.ns, "ss", "-ltn"]).includes(":5201"));
  const t1 = performance.now();
  const sent = JSON.parse(sh(["ip", "netns", "exec", a.ns, BUN, tool, "send", b.ipv6, "5201", String(20 * 1024 * 1024)]));
  await done;
  const secs = (performance.now() - t1) / 1000;
  const recv = JSON.parse(got.trim());
  console.log(`    sent     ${sent.bytes} bytes  sha256 ${sent.sha256}`);
  console.log(`    received ${recv.bytes} bytes  sha256 ${recv.sha256}`);
  console.log(`    ${recv.sha256 === sent.sha256 && recv.bytes === sent.bytes ? "intact" : "MISMATCH"}, ${((sent.bytes * 8) / secs / 1e6).toFixed(1)} Mbit/s`);
  ok = recv.sha256 === sent.sha256;

  step("What the host kept: only the overlay prefixes on alpha's TUN, no other routes");
  console.log(indent(sh(["ip", "netns", "exec", a.ns, "ip", "route"]) + sh(["ip", "netns", "exec", a.ns, "ip", "-6", "route"])));
} catch (e) {
  console.error(`\ndemo failed: ${(e as Error).message}`);
  for (const n of nodes) console.error(`\n--- ${n.spec.name} log (last lines) ---\n${n.tail(15)}`);
} finally {
  step("Cleaning up: nodes stopped, namespaces removed");
  await cleanup();
}
console.log(ok ? "\ndemo: OK" : "\ndemo: FAILED");
process.exit(ok ? 0 : 1);
