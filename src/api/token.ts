// The local API's credential: a random token in a 0600 file in the state dir, made fresh at each start.
//
// Whoever can read the file (the node's own user, root) may change the node's state through the API;
// an unprivileged local user or a web page cannot. The CLI reads the file and sends the token as
// `Authorization: Bearer <token>`.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

export const API_TOKEN_FILE = "api.token";
const TOKEN_RE = /^[0-9a-f]{64}$/;

export function apiTokenPath(stateDir: string): string {
  return join(stateDir, API_TOKEN_FILE);
}

/** Write a new token (32 random bytes, hex) to `<stateDir>/api.token`, mode 0600, and return it. */
export function createApiToken(stateDir: string): string {
  const token = randomBytes(32).toString("hex");
  const path = apiTokenPath(stateDir);
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  // O_EXCL with mode 0600: the bytes never sit in a file anyone else could open.
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, token + "\n");
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600); // a umask cannot widen it, but be explicit
  renameSync(tmp, path);
  return token;
}

/** The token in `<stateDir>/api.token`, or undefined when it is missing, unreadable or malformed. */
export function readApiToken(stateDir: string): string | undefined {
  try {
    const t = readFileSync(apiTokenPath(stateDir), "utf8").trim();
    return TOKEN_RE.test(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

/** Constant-time comparison of a presented token with the real one. */
export function tokenMatches(presented: string | undefined, token: string): boolean {
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
