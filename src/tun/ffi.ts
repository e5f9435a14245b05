// The TUN C helper (ffi/tun.c) compiled at run time with bun:ffi's cc; its source is embedded so the
// compiled binary carries it, and written to a private temp dir for TinyCC to read.
import { cc } from "bun:ffi";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import source from "../../ffi/tun.c" with { type: "text" };

const SYMBOLS = {
  tun_open: { args: ["cstring", "ptr"], returns: "int" },
  tun_read_batch: { args: ["int", "ptr", "int", "ptr", "int", "int"], returns: "int" },
  tun_write: { args: ["int", "ptr", "int"], returns: "int" },
  tun_close: { args: ["int"], returns: "int" },
} as const;

export type TunLib = ReturnType<typeof compile>;

function compile() {
  const dir = mkdtempSync(join(tmpdir(), "trellis-ffi-"));
  try {
    const file = join(dir, "tun.c");
    writeFileSync(file, source, { mode: 0o600 });
    return cc({ source: file, symbols: SYMBOLS }).symbols;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let lib: TunLib | undefined;
/** The helper's functions, compiled once per thread. */
export function tunLib(): TunLib {
  return (lib ??= compile());
}
