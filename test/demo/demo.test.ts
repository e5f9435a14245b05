// The README's first command, `npm run demo`, as a test: it must end "demo: OK" having done what it
// prints (relay path, intact transfer, then a direct path) and leave no namespace behind.
import { expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { e2eReady, sh } from "../lib/netns.ts";
import { BUN, ROOT } from "../lib/nodes.ts";

setDefaultTimeout(240_000);
const root = e2eReady(import.meta.file);

test.skipIf(!root)("npm run demo: relay, intact transfer, then direct; exits 0 and cleans up", async () => {
  const p = Bun.spawn([BUN, join(ROOT, "test/demo/demo.ts")], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const all = out + err;
  expect(err).not.toContain("demo failed");
  expect(code).toBe(0);
  expect(out).toContain("demo: OK");
  expect(out).toMatch(/path=relay:[0-9a-f]{32}/); // trellis ping through the relay
  expect(out).toMatch(/\bintact, [\d.]+ Mbit\/s/);
  expect(out).toMatch(/path direct \d+ ms after the block was lifted/);
  expect(out).toMatch(/path=direct/);
  // Its namespaces were listed at the start (trl-demo-<pid>-<hex>-...): none is left.
  const made = [...all.matchAll(/\b(trl-demo-\d+-[0-9a-f]{4}-[a-z0-9]+)\b/g)].map((m) => m[1]);
  expect(made.length).toBeGreaterThan(0);
  const left = sh(["ip", "netns", "list"]).split("\n").map((l) => l.split(" ")[0]);
  for (const ns of made) expect(left).not.toContain(ns);
});
