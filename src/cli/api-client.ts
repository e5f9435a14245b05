// How the CLI reaches a running node: HTTP to the local API named in the config (or --api), with the
// API token from the state directory (api.token, 0600) when this user can read it.
import { loadConfig } from "../config/load.ts";
import { apiTokenPath, readApiToken } from "../api/token.ts";
import { fetchFailure } from "./seed-http.ts";

export class ApiError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ApiOptions {
  api?: string;
  config?: string;
}

/** The API base URL: --api HOST:PORT wins, else [api] listen from the config. */
export function apiBase(opts: ApiOptions): string {
  if (opts.api) return `http://${opts.api}`;
  const c = loadConfig(opts.config);
  const host = c.api.listen.host === "0.0.0.0" ? "127.0.0.1" : c.api.listen.host === "::" ? "[::1]" : c.api.listen.host;
  return `http://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${c.api.listen.port}`;
}

/**
 * The headers that carry the API token: $TRELLIS_API_TOKEN, else the state directory's api.token
 * (from the config). None when neither is readable: reads still work, actions answer 401.
 */
export function apiHeaders(opts: ApiOptions): Record<string, string> {
  let token = process.env.TRELLIS_API_TOKEN?.trim() || undefined;
  if (!token) {
    try {
      token = readApiToken(loadConfig(opts.config).node.stateDir);
    } catch {}
  }
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Where the token should be, for error messages. */
export function apiTokenHint(opts: ApiOptions): string {
  try {
    return apiTokenPath(loadConfig(opts.config).node.stateDir);
  } catch {
    return "the state directory's api.token";
  }
}

async function call<T>(base: string, path: string, init: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(base + path, init);
  } catch (e) {
    throw new ApiError(`the node's API at ${base} ${fetchFailure(e)}; start the node with 'trellis up' (or pass the --config or --api it uses)`);
  }
  const body = ((await res.json().catch(() => null)) ?? {}) as T & { error?: string };
  if (!res.ok) throw new ApiError(body.error ?? `API ${path} answered ${res.status}`, res.status);
  return body;
}

export async function apiGet<T>(base: string, path: string, headers: Record<string, string> = {}): Promise<T> {
  return call<T>(base, path, { headers });
}

export async function apiPost<T>(base: string, path: string, body: string, headers: Record<string, string> = {}): Promise<T> {
  return call<T>(base, path, { method: "POST", body, headers });
}
