// How the CLI tells errors apart: typed errors carry a message written for people; file-system errors
// are turned into one; anything else is a bug, and its JavaScript text is shown only with TRELLIS_DEBUG.
/** Errors whose message is written for people (each module's own error class). */
export const TYPED = new Set(["UsageError", "TrustError", "IdentityError", "ConfigError", "TunError", "SeedError", "ApiError", "NodeError", "SignalError", "HandshakeError", "NetnsError", "RouteError"]);
export const isTyped = (e: unknown) => e instanceof Error && TYPED.has(e.name);
/** A file-system error (permission, missing path, full disk) as a sentence, or undefined for anything else. */
export function systemMessage(e: unknown): string | undefined {
  const { code, path } = (e ?? {}) as { code?: string; path?: string };
  if (typeof code !== "string" || typeof path !== "string") return undefined;
  if (code === "EACCES" || code === "EPERM") return `permission denied on ${path}; run trellis as a user who may use it (e.g. with sudo), or pick another directory`;
  if (code === "ENOENT") return `${path} does not exist; check the path (or create it) and try again`;
  if (code === "ENOTDIR") return `${path} is not a directory (a file is in the way); check the path`;
  if (code === "EISDIR") return `${path} is a directory where a file was expected; check the path`;
  if (code === "ENOSPC" || code === "EDQUOT") return `no space left to write ${path}; free some and try again`;
  if (code === "EROFS") return `${path} is on a read-only file system; pick another directory`;
  return undefined;
}

