// How seed failures read: each way a fetch fails maps to a clause a person understands.
import { describe, expect, test } from "bun:test";
import { fetchFailure, httpError, seedReason } from "./seed-http.ts";
import { systemMessage } from "./main-errors.ts";

describe("seed errors as sentences", () => {
  test("fetch failures", () => {
    expect(fetchFailure(Object.assign(new TypeError("ECONNREFUSED: Unable to connect. Is the computer able to access the url?"), { code: "ECONNREFUSED" }))).toBe("refused the connection");
    expect(fetchFailure(Object.assign(new TypeError("getaddrinfo ENOTFOUND seed.invalid"), { code: "ENOTFOUND" }))).toBe("has a host name that does not resolve");
    expect(fetchFailure(new DOMException("The operation timed out.", "TimeoutError"), 10_000)).toBe("did not answer within 10 s");
    expect(fetchFailure(Object.assign(new Error("x"), { code: "EHOSTUNREACH" }))).toBe("is unreachable from here (no route to it)");
    expect(fetchFailure(Object.assign(new Error("socket reset"), { code: "ECONNRESET" }))).toBe("closed the connection before answering");
    expect(fetchFailure(new Error("unable to verify the first certificate"))).toContain("TLS certificate");
    expect(fetchFailure(null)).toBe("could not be reached");
  });

  test("HTTP errors name the status and the seed's own reason, never its raw body", () => {
    expect(httpError("http://s:1", 500, "null").message).toBe("seed http://s:1 answered HTTP 500");
    expect(httpError("http://s:1", 503, '{"error":"disk full"}').message).toBe("seed http://s:1 answered HTTP 503 (disk full)");
    expect(httpError("http://s:1", 502, "<html>bad gateway</html>").message).toBe("seed http://s:1 answered HTTP 502");
    expect(seedReason('{"error": 5}')).toBeUndefined();
    expect(seedReason("[]")).toBeUndefined();
  });

  test("file-system errors read as sentences; other errors are not guessed at", () => {
    expect(systemMessage(Object.assign(new Error("EACCES"), { code: "EACCES", path: "/var/lib/trellis" }))).toStartWith("permission denied on /var/lib/trellis;");
    expect(systemMessage(Object.assign(new Error("x"), { code: "ENOSPC", path: "/x" }))).toContain("no space left");
    expect(systemMessage(new TypeError("null is not an object"))).toBeUndefined();
  });
});
