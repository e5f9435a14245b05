import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeId } from "../identity/identity.ts";
import { DecisionLog } from "./decisions.ts";

test("the decision log writes JSON lines and rotates at its size cap", () => {
  const dir = mkdtempSync(join(tmpdir(), "trellis-decisions-"));
  try {
    const file = join(dir, "d.jsonl");
    const log = new DecisionLog(file, 4096);
    const d = { t: 1, dst: "ab".repeat(16) as NodeId, round: 1, candidates: [{ path: "relay:x", rtt_ms: 1.5, loss: 0, goodput_bps: 1e6, reward: 0.7, index: 0.8 }], choice: "relay:x", reward: 0.7 };
    for (let i = 0; i < 40; i++) log.write({ ...d, round: i });
    expect(existsSync(`${file}.1`)).toBe(true);
    const lines = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.at(-1).round).toBe(39);
    expect(readFileSync(file).length).toBeLessThanOrEqual(4096);
    expect(log.written).toBe(40);
    // An unwritable path is counted, reported once, and never throws.
    const msgs: string[] = [];
    const bad = new DecisionLog(join(dir, "no/such/dir/d.jsonl"), 4096, (_l, m) => msgs.push(m));
    bad.write(d);
    bad.write(d);
    expect(bad.failed).toBe(2);
    expect(msgs.length).toBe(1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
