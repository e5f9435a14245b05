// Talking to a seed over HTTP from the CLI (invite publishes a grant, join fetches and burns it), with
// failures told as one plain sentence: which seed, what went wrong (refused, no such host, no answer in
// time, an HTTP status and the seed's own reason), and what to do. No JavaScript error text.
import { seedEndpoint, seedTlsOptions, SeedTlsError } from "../signal/tls.ts";

/** How long the CLI waits for a seed before saying it did not answer. */
export const SEED_TIMEOUT_MS = 10_000;

/** A seed could not be used; `message` is meant for people. */
export class SeedError extends Error {
  constructor(
    readonly seed: string,
    /** Why, as a clause: "refused the connection", "answered HTTP 500 (disk full)". */
    readonly why: string,
    /** The HTTP status when the seed answered, else undefined. */
    readonly status?: number,
  ) {
    super(`seed ${seed} ${why}`);
    this.name = "SeedError";
  }
}

/** What a failed fetch means, as a clause after "seed URL ...". */
export function fetchFailure(e: unknown, timeoutMs = SEED_TIMEOUT_MS): string {
  const err = e as { name?: string; code?: string; message?: string };
  const code = String(err?.code ?? "");
  const msg = String(err?.message ?? "");
  if (err?.name === "TimeoutError" || err?.name === "AbortError" || code === "ETIMEDOUT" || /timed? ?out/i.test(msg)) return `did not answer within ${Math.round(timeoutMs / 1000)} s`;
  if (code === "ECONNREFUSED" || code === "ConnectionRefused" || /ECONNREFUSED|refused/i.test(msg)) return "refused the connection";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /ENOTFOUND|getaddrinfo|DNS/i.test(msg)) return "has a host name that does not resolve";
  if (code === "ENETUNREACH" || code === "EHOSTUNREACH" || /unreachable/i.test(msg)) return "is unreachable from here (no route to it)";
  if (code === "ECONNRESET" || /reset|closed/i.test(msg)) return "closed the connection before answering";
  if (/certificate|TLS|SSL|self[- ]signed/i.test(code + msg)) return "presented a TLS certificate this machine does not trust";
  return "could not be reached";
}

/** The seed's own reason in an error body ({"error": "..."}), if it gave one that reads as text. */
export function seedReason(body: string): string | undefined {
  try {
    const v = JSON.parse(body);
    if (v && typeof v === "object" && typeof v.error === "string" && v.error.length && v.error.length <= 300) return v.error;
  } catch {}
  return undefined;
}

/**
 * fetch() a seed; a network failure or timeout becomes a SeedError. HTTP errors are returned as they are.
 * An https:// seed is checked against the system's CAs plus `ca` (a PEM file), or by its #sha256= pin
 * (src/signal/tls.ts).
 */
export async function seedFetch(seed: string, path: string, init: RequestInit = {}, timeoutMs = SEED_TIMEOUT_MS, ca?: string | null): Promise<{ status: number; ok: boolean; text: string }> {
  let res: Response;
  const base = seedEndpoint(seed).base;
  try {
    const tls = await seedTlsOptions(seed, ca);
    res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(timeoutMs), ...(tls ? { tls } : {}) } as RequestInit);
  } catch (e) {
    if (e instanceof SeedTlsError) throw new SeedError(base, e.code === "pin-mismatch" ? "presented a certificate that does not match the pin in its URL" : e.message.replace(/^seed \S+: /, ""));
    const why = fetchFailure(e, timeoutMs);
    const detail = String((e as Error)?.message ?? "");
    throw new SeedError(base, why.includes("TLS") && detail ? `${why} (${detail})` : why);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    throw new SeedError(seed, fetchFailure(e, timeoutMs));
  }
  return { status: res.status, ok: res.ok, text };
}

/** A SeedError for an HTTP answer that is not what we wanted. */
export function httpError(seed: string, status: number, body: string): SeedError {
  const reason = seedReason(body);
  return new SeedError(seed, `answered HTTP ${status}${reason ? ` (${reason})` : ""}`, status);
}
