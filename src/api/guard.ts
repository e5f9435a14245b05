// Who may use the local API: requests for the API's own Host only, and a token for anything that acts.
//
// Threats (docs/SECURITY.md): a web page in the user's browser (DNS rebinding to read status; a
// "simple" text/plain POST that needs no CORS preflight to change routing) and an unprivileged local
// user. The Host check defeats rebinding (the page's origin is its own hostname, which we refuse);
// an Origin or Sec-Fetch-Site from another site is refused outright; and every request that changes
// state or makes the node act (POSTs, /v1/ping) needs the token from the 0600 file (token.ts), which
// neither a page nor another local user can read. Read-only GETs stay open to local users on the
// API's own address, like `ip` or `wg show` output.
import type { MiddlewareHandler } from "hono";
import { parseIpv4, parseIpv6 } from "../identity/address.ts";
import { tokenMatches } from "./token.ts";

export interface ApiAccess {
  /** The address the API listens on ([api] listen host). */
  host: string;
  /** The port it listens on (after bind: a configured 0 becomes the kernel's choice). */
  port: () => number;
  /** The token that POSTs and /v1/ping must present. */
  token: string;
  /** Where the token lives, for the error message. */
  tokenPath?: string;
}

/** GET endpoints that make the node act (create peer state, send packets): they need the token too. */
const ACTING_GETS = new Set(["/v1/ping"]);

function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  const v4 = parseIpv4(host);
  if (v4) return v4[0] === 127;
  return host === "::1" || parseIpv6(host)?.every((b, i) => b === (i === 15 ? 1 : 0)) === true;
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || parseIpv6(host)?.every((b) => b === 0) === true;
}

function isIpLiteral(host: string): boolean {
  return parseIpv4(host) !== null || parseIpv6(host) !== null;
}

/** Split a Host header ("h:p", "[v6]:p", "h") into lower-case host and port (80 when absent); null if malformed. */
export function splitHost(header: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]\s]+))(?::(\d{1,5}))?$/.exec(header.trim());
  if (!m) return null;
  return { host: (m[1] ?? m[2]).toLowerCase(), port: m[3] === undefined ? 80 : Number(m[3]) };
}

/**
 * Is `header` (a Host header or an Origin's host) the API's own address? On a loopback listener:
 * localhost, 127.0.0.1, ::1 or the configured address; on a wildcard listener: any IP literal or
 * localhost (a rebinding page always arrives under its own host name); otherwise the configured
 * address only. The port must be the API's.
 */
export function ownHost(header: string | undefined, access: Pick<ApiAccess, "host" | "port">): boolean {
  if (!header) return false;
  const h = splitHost(header);
  if (!h || h.port !== access.port()) return false;
  const listen = access.host.toLowerCase().replace(/^\[|\]$/g, "");
  if (h.host === listen) return true;
  if (isLoopback(listen)) return h.host === "localhost" || h.host === "127.0.0.1" || h.host === "::1";
  if (isWildcard(listen)) return h.host === "localhost" || isIpLiteral(h.host);
  return false;
}

/** Does this request need the token? Everything but plain reads does. */
export function needsToken(method: string, path: string): boolean {
  return !(method === "GET" || method === "HEAD") || ACTING_GETS.has(path);
}

export function guard(access: ApiAccess): MiddlewareHandler {
  return async (c, next) => {
    if (!ownHost(c.req.header("host"), access))
      return c.json({ error: `refused: Host ${JSON.stringify(c.req.header("host") ?? "")} is not this API's address` }, 421);
    const origin = c.req.header("origin");
    if (origin !== undefined) {
      let ok = false;
      try {
        const u = new URL(origin);
        ok = u.protocol === "http:" && ownHost(u.host, access);
      } catch {}
      if (!ok) return c.json({ error: `refused: cross-origin request from ${JSON.stringify(origin)}` }, 403);
    }
    const site = c.req.header("sec-fetch-site");
    if (site === "cross-site" || site === "same-site") return c.json({ error: "refused: cross-site request" }, 403);
    if (needsToken(c.req.method, c.req.path)) {
      const auth = c.req.header("authorization");
      const presented = auth?.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
      if (!tokenMatches(presented, access.token))
        return c.json({ error: `${c.req.method} ${c.req.path} needs the API token (Authorization: Bearer …) from ${access.tokenPath ?? "the state directory's api.token"}; the trellis CLI sends it when it can read that file (run it as root or the node's user)` }, 401);
    }
    await next();
  };
}
