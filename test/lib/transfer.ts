// Transfers run inside namespaces for the e2e tests: a TCP stream checked by SHA-256 (./tcp.ts) and
// single UDP datagrams checked whole (./udp.ts).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { sh } from "./netns.ts";
import { BUN, ROOT, waitFor, type TestNode } from "./nodes.ts";

export interface Digest {
  bytes: number;
  sha256: string;
}

/**
 * Send `bytes` over TCP from `from` to `addr:port` on `to`; `during` runs while the stream flows.
 * Resolves to what each side counted and hashed.
 */
export async function tcpTransfer(from: TestNode, to: TestNode, addr: string, port: number, bytes: number, during?: () => Promise<void>): Promise<{ sent: Digest; recv: Digest }> {
  const tool = join(ROOT, "test/lib/tcp.ts");
  const server = spawn("ip", ["netns", "exec", to.ns, BUN, tool, "serve", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  let got = "";
  server.stdout.on("data", (d) => (got += d));
  const served = new Promise((r) => server.on("exit", r));
  await waitFor("tcp server", () => sh(["ip", "netns", "exec", to.ns, "ss", "-ltn"], { allowFail: true }).includes(`:${port} `));
  const client = spawn("ip", ["netns", "exec", from.ns, BUN, tool, "send", addr, String(port), String(bytes)], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  client.stdout.on("data", (d) => (out += d));
  const sentDone = new Promise((r) => client.on("exit", r));
  if (during) await during();
  await sentDone;
  await served;
  return { sent: JSON.parse(out.trim()), recv: JSON.parse(got.trim()) };
}

/**
 * Send one UDP datagram of `size` random bytes from `from` to `addr:port` on `to`, up to `tries` times
 * until it arrives; resolves to what was sent and what arrived (undefined when nothing did).
 */
export async function udpDatagram(from: TestNode, to: TestNode, addr: string, port: number, size: number, tries = 3): Promise<{ sent: Digest; recv?: Digest }> {
  const tool = join(ROOT, "test/lib/udp.ts");
  const server = spawn("ip", ["netns", "exec", to.ns, BUN, tool, "serve", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  let got = "";
  server.stdout.on("data", (d) => (got += d));
  await waitFor("udp server", () => sh(["ip", "netns", "exec", to.ns, "ss", "-lun"], { allowFail: true }).includes(`:${port} `));
  let sent: Digest | undefined;
  try {
    for (let i = 0; i < tries && !got.trim(); i++) {
      sent = JSON.parse(sh(["ip", "netns", "exec", from.ns, BUN, tool, "send", addr, String(port), String(size)]));
      await waitFor("datagram", () => got.trim(), 2000).catch(() => undefined);
    }
  } finally {
    server.kill();
  }
  return { sent: sent!, recv: got.trim() ? JSON.parse(got.trim().split("\n")[0]) : undefined };
}
