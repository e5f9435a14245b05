// The decision log: one JSON line per path-policy decision (time, destination, candidates with their
// features, the choice, the reward observed), opt-in, with size-capped rotation (FILE → FILE.1). An
// outside learner trains on these lines and deploys the result as reward weights (see docs/PATHS.md).
import { appendFileSync, renameSync, statSync } from "node:fs";
import type { Decision } from "./steering.ts";

export class DecisionLog {
  private size: number;
  written = 0;
  failed = 0;

  constructor(readonly file: string, readonly maxBytes: number, private readonly log: (msg: string) => void = () => {}) {
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
      if (this.failed++ === 0) this.log(`decision log ${this.file}: ${(e as Error).message} (further errors not logged)`);
    }
  }
}
