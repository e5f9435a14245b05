// The README's first command: a small trellis network in namespaces, a ping and a transfer across it.
//
//   relay (198.18.0.2, also the seed) ─┐
//   NAT ── alpha (10.200.1.2)          ─┼─ router, each on its own subnet; alpha ↔ bravo blocked
//   NAT ── bravo (10.200.2.2)          ─┘
// alpha and bravo sit behind their own NATs and cannot reach each other directly, so the relay carries
// their sealed packets (it cannot read them). Keys: ML-KEM-768 + X25519 signed by ML-DSA-65, end to
// end. Then the block is lifted: a direct link forms in the background and traffic moves to it.
import { isRoot, sh, TestNet } from "../lib/netns.ts";
import { BUN, ROOT, TestNode, removeDir, tempDir, waitFor } from "../lib/nodes.ts";
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
  step("Building the network (a router namespace, a relay, two hosts behind NATs) and identities");
  net.addHost("relay");
  net.addNatHost("a");
  net.addNatHost("b");
  net.block("a", "b");
  const seeds = [`http://${net.host("relay").ip}:7443`];
  const relay = new TestNode(net, { host: "relay", name: "relay", relay: true, seeds }, dir);
  const a = new TestNode(net, { host: "a", name: "alpha", ipv4: "100.64.0.2/24", seeds }, dir);
  const b = new TestNode(net, { host: "b", name: "bravo", ipv4: "100.64.0.3/24", seeds }, dir);
  [relay.spec.allow, a.spec.allow, b.spec.allow] = [[a.id, b.id], [b.id, relay.id], [a.id, relay.id]];
  for (const n of [relay, a, b]) n.writeConfig();
  nodes.push(relay, a, b);
  for (const h of net.hosts.values()) console.log(`    ${h.ns.padEnd(22)} ${h.ip}`);
  console.log("    direct traffic between alpha's and bravo's NATs is dropped at the router");
  console.log("    identities: ML-DSA-65 + ML-KEM-768 + X25519, made locally");
  for (const n of [relay, a, b]) console.log(`    ${n.spec.name.padEnd(6)} ${n.id}  ${n.ipv6}${n.spec.ipv4 ? "  " + n.spec.ipv4 : ""}`);
  console.log(`\n    alpha's config (${a.configPath}):\n${indent(readFileSync(a.configPath, "utf8"))}`);

  step("Starting the relay, then alpha and bravo (trellis up)");
  await relay.start();
  await Promise.all([a.start(), b.start()]);
  const t0 = Date.now();
  await waitFor("alpha ↔ bravo session", () => a.api("/v1/status").peers?.find((p: any) => p.id === b.id && p.session && p.ipv4), 30000);
  console.log(`    links to the relay and a post-quantum session through it up in ${Date.now() - t0} ms`);

  step("trellis status on alpha");
  console.log(indent(a.cli(["status", "--config", a.configPath]).out));

  step("ping bravo from alpha over the overlay (IPv6, then IPv4) through the TUN, via the relay");
  console.log(indent(sh(["ip", "netns", "exec", a.ns, "ping", "-c", "3", "-i", "0.3", b.ipv6], { allowFail: true })));
  console.log(indent(sh(["ip", "netns", "exec", a.ns, "ping", "-c", "3", "-i", "0.3", "100.64.0.3"], { allowFail: true })));

  step("trellis ping bravo (end to end inside the session; path = the relay's node id)");
  console.log(indent(a.cli(["ping", "bravo", "--count", "3", "--interval", "0.3", "--config", a.configPath]).out));

  step("A 10 MB TCP transfer from alpha to bravo through the relay, checked by SHA-256");
  const tool = join(ROOT, "test/lib/tcp.ts");
  const server = spawn("ip", ["netns", "exec", b.ns, BUN, tool, "serve", "5201"], { stdio: ["ignore", "pipe", "ignore"] });
  let got = "";
  server.stdout.on("data", (d) => (got += d));
  const done = new Promise((r) => server.on("exit", r));
  await waitFor("tcp server", () => sh(["ip", "netns", "exec", b.ns, "ss", "-ltn"]).includes(":5201"));
  const t1 = performance.now();
  const sent = JSON.parse(sh(["ip", "netns", "exec", a.ns, BUN, tool, "send", b.ipv6, "5201", String(10 * 1024 * 1024)]));
  await done;
  const secs = (performance.now() - t1) / 1000;
  const recv = JSON.parse(got.trim());
  console.log(`    sent     ${sent.bytes} bytes  sha256 ${sent.sha256}`);
  console.log(`    received ${recv.bytes} bytes  sha256 ${recv.sha256}`);
  console.log(`    ${recv.sha256 === sent.sha256 && recv.bytes === sent.bytes ? "intact" : "MISMATCH"}, ${((sent.bytes * 8) / secs / 1e6).toFixed(1)} Mbit/s`);
  ok = recv.sha256 === sent.sha256;

  step("Lifting the block: a direct link forms in the background and traffic moves to it");
  net.block("a", "b", false);
  const t2 = Date.now();
  await waitFor("direct path", () => {
    sh(["ip", "netns", "exec", a.ns, "ping", "-c", "1", "-W", "1", b.ipv6], { allowFail: true });
    return a.api("/v1/status").peers?.find((p: any) => p.id === b.id)?.path === "direct";
  }, 60000);
  console.log(`    path direct ${Date.now() - t2} ms after the block was lifted (link retries back off up to 15 s)`);
  console.log(indent(a.cli(["ping", "bravo", "--count", "2", "--interval", "0.3", "--config", a.configPath]).out));

  step("What the host kept: only the overlay prefixes on alpha's TUN, no other routes");
  console.log(indent(sh(["ip", "netns", "exec", a.ns, "ip", "route"]) + sh(["ip", "netns", "exec", a.ns, "ip", "-6", "route"])));
} catch (e) {
  ok = false; // whatever step failed, the demo did not do what it says
  console.error(`\ndemo failed: ${(e as Error).message}`);
  for (const n of nodes) console.error(`\n--- ${n.spec.name} log (last lines) ---\n${n.tail(15)}`);
} finally {
  step("Cleaning up: nodes stopped, namespaces removed");
  await cleanup();
}
console.log(ok ? "\ndemo: OK" : "\ndemo: FAILED");
process.exit(ok ? 0 : 1);
