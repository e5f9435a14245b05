// How the CLI reaches a running node: HTTP to the local API named in the config (or --api).
import { loadConfig } from "../config/load.ts";

export class ApiError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = "ApiError";
  }
}

/** The API base URL: --api HOST:PORT wins, else [api] listen from the config. */
export function apiBase(opts: { api?: string; config?: string }): string {
  if (opts.api) return `http://${opts.api}`;
  const c = loadConfig(opts.config);
  const host = c.api.listen.host === "0.0.0.0" ? "127.0.0.1" : c.api.listen.host === "::" ? "[::1]" : c.api.listen.host;
  return `http://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${c.api.listen.port}`;
}

export async function apiGet<T>(base: string, path: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(base + path);
  } catch (e) {
    throw new ApiError(`cannot reach the node's API at ${base} (is 'trellis up' running?): ${(e as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new ApiError(body.error ?? `API ${path} answered ${res.status}`, res.status);
  return body;
}
