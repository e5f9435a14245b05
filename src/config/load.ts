// Loading the TOML config: parse, check every key against the schema, and name file and line on errors.
import { existsSync, readFileSync } from "node:fs";
import { defaults, KeyProblem, SCHEMA, type Config } from "./schema.ts";

export type { Config } from "./schema.ts";
export const DEFAULT_CONFIG_PATH = "/etc/trellis/trellis.toml";

export type ConfigErrorCode = "syntax" | "unknown-key" | "type" | "value" | "io";
export class ConfigError extends Error {
  constructor(readonly code: ConfigErrorCode, readonly file: string, readonly line: number | undefined, readonly key: string | undefined, detail: string) {
    super(`${file}${line ? `:${line}` : ""}: ${key ? `${key}: ` : ""}${detail}`);
    this.name = "ConfigError";
  }
}

/** The 1-based line of `key` under `[section]` (or of the section header when key is omitted). */
export function findLine(text: string, section: string, key?: string): number | undefined {
  const lines = text.split("\n");
  let current = "";
  let sectionLine: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].replace(/#.*$/, "").trim();
    const h = /^\[\s*([^\]]+?)\s*\]$/.exec(l);
    if (h) {
      current = h[1].replace(/["'\s]/g, "");
      if (current === section && sectionLine === undefined) sectionLine = i + 1;
      continue;
    }
    if (current !== section || key === undefined) continue;
    const k = /^["']?([A-Za-z0-9_-]+)["']?\s*[=.]/.exec(l);
    if (k && k[1] === key) return i + 1;
  }
  if (key !== undefined && section === "") return undefined;
  return sectionLine;
}

export function parseConfig(text: string, file: string): Config {
  let raw: unknown;
  try {
    raw = Bun.TOML.parse(text);
  } catch (e) {
    const err = e as Error & { line?: number };
    // Bun reports a 0-based line on some errors; use it only when it points inside the text.
    const nLines = text.split("\n").length;
    const line = typeof err.line === "number" && err.line >= 0 && err.line < nLines ? err.line + 1 : undefined;
    throw new ConfigError("syntax", file, line, undefined, `TOML syntax error: ${err.message}`);
  }
  const c = defaults(file);
  for (const [section, body] of Object.entries(raw as Record<string, unknown>)) {
    const keys = SCHEMA[section];
    if (!keys) {
      const line = findLine(text, section) ?? findLine(text, "", section);
      throw new ConfigError("unknown-key", file, line, `[${section}]`, `unknown section (known: ${Object.keys(SCHEMA).map((s) => `[${s}]`).join(", ")})`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body))
      throw new ConfigError("type", file, findLine(text, "", section), section, `expected a [${section}] table`);
    for (const [key, v] of Object.entries(body)) {
      const name = `[${section}] ${key}`;
      const set = keys[key];
      if (!set) throw new ConfigError("unknown-key", file, findLine(text, section, key), name, `unknown key (known in [${section}]: ${Object.keys(keys).join(", ")})`);
      try {
        set(v, c);
      } catch (e) {
        if (!(e instanceof KeyProblem)) throw e;
        throw new ConfigError(e.kind, file, findLine(text, section, key), name, e.message);
      }
    }
  }
  if (!c.relay.tlsCert !== !c.relay.tlsKey) {
    const [have, missing] = c.relay.tlsCert ? ["tls_cert", "tls_key"] : ["tls_key", "tls_cert"];
    throw new ConfigError("value", file, findLine(text, "relay", have), `[relay] ${have}`, `needs [relay] ${missing} too (the certificate and its private key, PEM files)`);
  }
  return c;
}

/** Load `file`, or the default path; a missing default file means all defaults. */
export function loadConfig(file?: string): Config {
  const path = file ?? DEFAULT_CONFIG_PATH;
  if (!existsSync(path)) {
    if (file === undefined) return defaults(null);
    throw new ConfigError("io", path, undefined, undefined, "no such file");
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError("io", path, undefined, undefined, (e as Error).message);
  }
  return parseConfig(text, path);
}
