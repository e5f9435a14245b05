// Logging: one line per event on stderr, "TIME LEVEL [part] message", filtered by [node] log_level.
export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** The one logging signature every part takes (a logger(), or a test's collector). */
export type Log = (level: Level, msg: string) => void;

let threshold: Level = "info";
export function setLogLevel(level: Level): void {
  threshold = level;
}

/** A logger for one part of the node (`link`, `session`, `tun`, ...). */
export function logger(part: string): Log {
  return (level, msg) => {
    if (ORDER[level] < ORDER[threshold]) return;
    process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} [${part}] ${msg}\n`);
  };
}
