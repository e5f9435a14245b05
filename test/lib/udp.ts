// One UDP datagram checked whole, run inside namespaces: `serve PORT` prints {bytes, sha256} for each
// datagram that arrives; `send HOST PORT BYTES` sends one of random bytes and prints the same for it.
import { createHash, randomBytes } from "node:crypto";

const [mode, ...args] = process.argv.slice(2);
const digest = (b: Uint8Array) => JSON.stringify({ bytes: b.length, sha256: createHash("sha256").update(b).digest("hex") });
if (mode === "serve") {
  await Bun.udpSocket({ port: Number(args[0]), hostname: "::", socket: { data: (_s, data) => console.log(digest(data)) } });
} else if (mode === "send") {
  const [host, port, size] = [args[0], Number(args[1]), Number(args[2])];
  const s = await Bun.udpSocket({ hostname: host.includes(":") ? "::" : "0.0.0.0" });
  const b = randomBytes(size);
  if (!s.send(b, port, host)) throw new Error(`udp send of ${size} bytes to ${host}:${port} failed`);
  console.log(digest(b));
  await Bun.sleep(50);
  s.close();
} else {
  console.error("usage: udp.ts serve PORT | send HOST PORT BYTES");
  process.exit(2);
}
