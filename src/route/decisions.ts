// The decision log: one JSON line per path-policy decision (time, destination, candidates with their
// features, the choice, the reward observed), opt-in, with size-capped rotation (FILE → FILE.1). An
// outside learner trains on these lines and deploys the result as reward weights (see docs/PATHS.md).
// RecentPaths keeps the last few decisions and path changes in memory for the page (src/api/page.ts).
import type { Log } from "../log.ts";
import { appendFileSync, renameSync, statSync } from "node:fs";
import type { NodeId } from "../identity/identity.ts";
import type { Decision } from "./steering.ts";

export class DecisionLog {
  private size: number;
  written = 0;
  failed = 0;

  constructor(readonly file: string, readonly maxBytes: number, private readonly log: Log = () => {}) {
    try {
      this.size = statSync(file).size;
    } catch {
      this.size = 0;
    }
  }

  write(d: Decision): void {
    const line = JSON.stringify(d) + "\n";
    try {
      if (this.size + line.length > this.maxBytes && this.size > 0) {
        renameSync(this.file, `${this.file}.1`);
        this.size = 0;
      }
      appendFileSync(this.file, line);
      this.size += line.length;
      this.written++;
    } catch (e) {
      if (this.failed++ === 0) this.log("warn", `decision log ${this.file}: ${(e as Error).message} (further errors not logged)`);
    }
  }
}

/** One move of a destination's traffic to another path (direct, relay:<id>...). */
export interface PathChange {
  t: number;
  dst: NodeId;
  from: string | null;
  to: string;
}

/** The last `max` policy decisions and path changes, oldest first (bounded: a busy node keeps no more). */
export class RecentPaths {
  readonly decisions: Decision[] = [];
  readonly changes: PathChange[] = [];
  constructor(private readonly max = 50, private readonly now: () => number = Date.now) {}

  decision(d: Decision): void {
    this.decisions.push(d);
    if (this.decisions.length > this.max) this.decisions.shift();
  }

  change(dst: NodeId, from: string | undefined, to: string): void {
    this.changes.push({ t: Math.round(this.now()), dst, from: from ?? null, to });
    if (this.changes.length > this.max) this.changes.shift();
  }
}
