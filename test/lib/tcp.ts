// A TCP transfer checked by hash, run inside namespaces: `serve PORT` and `send HOST PORT BYTES`.
// Both print one JSON line {bytes, sha256}; the test compares the two.
import { createHash, randomBytes } from "node:crypto";
import { connect, createServer } from "node:net";

const [mode, ...args] = process.argv.slice(2);
if (mode === "serve") {
  const port = Number(args[0]);
  const server = createServer((sock) => {
    const h = createHash("sha256");
    let bytes = 0;
    sock.on("data", (d) => {
      h.update(d);
      bytes += d.length;
    });
    sock.on("end", () => {
      console.log(JSON.stringify({ bytes, sha256: h.digest("hex") }));
      sock.end();
      server.close();
    });
    sock.on("error", (e) => {
      console.error(`serve: ${e.message}`);
      process.exit(1);
    });
  });
  server.listen(port, "::", () => console.error(`listening on ${port}`));
} else if (mode === "send") {
  const [host, port, total] = [args[0], Number(args[1]), Number(args[2])];
  const h = createHash("sha256");
  const chunk = 64 * 1024;
  let sent = 0;
  const sock = connect({ host, port }, () => {
    const pump = () => {
      while (sent < total) {
        const b = randomBytes(Math.min(chunk, total - sent));
        h.update(b);
        sent += b.length;
        if (!sock.write(b)) return sock.once("drain", pump);
      }
      sock.end();
    };
    pump();
  });
  sock.on("close", () => console.log(JSON.stringify({ bytes: sent, sha256: h.digest("hex") })));
  sock.on("error", (e) => {
    console.error(`send: ${e.message}`);
    process.exit(1);
  });
} else {
  console.error("usage: tcp.ts serve PORT | send HOST PORT BYTES");
  process.exit(2);
}
