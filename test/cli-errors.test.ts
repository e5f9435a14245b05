// Every error a person can hit while making and joining a network is one plain sentence that names the
// cause and the next step, never JavaScript error text (issue 12). The CLI runs as a separate process;
// the seeds here (a real one, one that answers HTTP errors, one that never answers) run in this process.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN, CLI } from "./lib/nodes.ts";
import { startSeed } from "../src/seed/server.ts";
import { decodeToken, encodeToken } from "../src/trust/enrolment.ts";

setDefaultTimeout(60_000); // each step spawns the CLI (about a second on a busy machine)
const dir = mkdtempSync(join(tmpdir(), "trellis-cli-errors-"));
let seed: Awaited<ReturnType<typeof startSeed>>;
let broken: ReturnType<typeof Bun.serve>;
let silent: Server;
let seedUrl: string, brokenUrl: string, silentUrl: string;
/** A port nothing listens on: one the kernel gave us, closed again. */
let closedUrl: string;

async function cli(...args: string[]) {
  const p = Bun.spawn([BUN, CLI, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, TRELLIS_DEBUG: "" } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: out.trim(), err: err.trim() };
}

/** One plain sentence: "trellis: ..." on one line, no stack, no engine text, and a next step. */
function plain(err: string): string {
  expect(err.split("\n").length).toBe(1);
  expect(err).toStartWith("trellis: ");
  for (const js of ["is not an object", "undefined", "null", "TypeError", "Error:", "evaluating", "    at ", "ECONNREFUSED", "Unable to connect", "Is the computer able"]) expect(err).not.toContain(js);
  return err;
}

const root = join(dir, "root");
const state = join(dir, "node");
let token = "";

beforeAll(async () => {
  seed = await startSeed({ listen: "127.0.0.1:0" });
  seedUrl = `http://127.0.0.1:${seed.port}`;
  // A seed-like server that answers every request with an HTTP error; "null" is what once crashed invite.
  broken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (r) => (r.method === "PUT" ? new Response("null", { status: 500 }) : Response.json({ error: "disk full" }, { status: 503 })) });
  brokenUrl = `http://127.0.0.1:${broken.port}`;
  // A server that accepts connections and never answers.
  silent = createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  const spare = createServer();
  await new Promise<void>((r) => spare.listen(0, "127.0.0.1", r));
  closedUrl = `http://127.0.0.1:${(spare.address() as { port: number }).port}`;
  await new Promise((r) => spare.close(r));
  await cli("network", "create", "lab", "--out", root);
  await cli("init", "--state", state);
  token = (await cli("invite", "--root", root, "--seed", seedUrl, "--name", "a", "--ipv4", "100.64.0.2")).out;
});

afterAll(async () => {
  await seed.stop();
  broken.stop(true);
  silent.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("CLI errors in the network flows", () => {
  test("invite: a seed that refuses the connection", async () => {
    const r = await cli("invite", "--root", root, "--seed", closedUrl, "--name", "b");
    expect(r.code).toBe(1);
    expect(plain(r.err)).toContain(`seed ${closedUrl} refused the connection`);
    expect(r.err).toContain("check that the seed is running");
  });

  test("invite: a seed that answers an HTTP error (even a body of null)", async () => {
    const r = await cli("invite", "--root", root, "--seed", brokenUrl, "--name", "b");
    expect(r.code).toBe(1);
    expect(plain(r.err)).toContain(`seed ${brokenUrl} answered HTTP 500`);
  });

  test("invite: a seed that never answers times out with a sentence", async () => {
    const r = await cli("invite", "--root", root, "--seed", silentUrl, "--name", "b");
    expect(r.code).toBe(1);
    expect(plain(r.err)).toContain(`seed ${silentUrl} did not answer within 10 s`);
  }, 30_000);

  test("invite: the root directory is missing", async () => {
    const r = await cli("invite", "--root", join(dir, "no-such-root"), "--seed", seedUrl);
    expect(r.code).toBe(1);
    expect(plain(r.err)).toContain(`the root directory ${join(dir, "no-such-root")} does not exist`);
    expect(r.err).toContain("trellis network create NAME --out");
  });

  test("invite: a directory without a root key", async () => {
    mkdirSync(join(dir, "empty-root"));
    const r = await cli("invite", "--root", join(dir, "empty-root"), "--seed", seedUrl);
    expect(plain(r.err)).toContain(`there is no root key in ${join(dir, "empty-root")}`);
  });

  test("join: an expired token", async () => {
    const expired = encodeToken({ ...decodeToken(token), expires: Math.floor(Date.now() / 1000) - 10 });
    const r = await cli("join", expired, "--state", state);
    expect(r.code).toBe(1);
    expect(plain(r.err)).toContain("this invite expired");
    expect(r.err).toContain("ask for a new one");
  });

  test("join: a mangled token (cut short, not a token at all, one character changed)", async () => {
    expect(plain((await cli("join", token.slice(0, 40), "--state", state)).err)).toContain("the invite token is damaged or cut short; copy the whole line");
    expect(plain((await cli("join", "hello", "--state", state)).err)).toContain("that is not an invite token");
    const t = decodeToken(token);
    const altered = encodeToken({ ...t, seed: t.seed.map((b, i) => (i === 0 ? b ^ 1 : b)) });
    const r = await cli("join", altered, "--state", state);
    expect(r.code).toBe(1);
    expect(plain(r.err)).toContain("does not match its grant");
  });

  test("join: the token's seed refuses the connection, or answers an HTTP error", async () => {
    const t = decodeToken(token);
    const refused = await cli("join", encodeToken({ ...t, seeds: [closedUrl] }), "--state", state);
    expect(refused.code).toBe(1);
    expect(plain(refused.err)).toContain(`could not fetch the invite's grant: seed ${closedUrl} refused the connection`);
    const http = await cli("join", encodeToken({ ...t, seeds: [brokenUrl] }), "--state", state);
    expect(plain(http.err)).toContain(`seed ${brokenUrl} answered HTTP 503 (disk full)`);
  });

  test("join: the state directory is missing, or holds no identity", async () => {
    const missing = await cli("join", token, "--state", join(dir, "nope"));
    expect(missing.code).toBe(1);
    expect(plain(missing.err)).toContain(`the state directory ${join(dir, "nope")} does not exist; run 'trellis init --state`);
    mkdirSync(join(dir, "blank"));
    const blank = await cli("join", token, "--state", join(dir, "blank"));
    expect(plain(blank.err)).toContain(`no identity at ${join(dir, "blank")}`);
    expect(blank.err).toContain("trellis init --state");
  });

  test("join: a token used once is refused the second time, naming who used it", async () => {
    const ok = await cli("join", token, "--state", state);
    expect(ok.code).toBe(0);
    await cli("init", "--state", join(dir, "other"));
    const r = await cli("join", token, "--state", join(dir, "other"));
    expect(r.code).toBe(1);
    expect(plain(r.err)).toMatch(/this invite was already used \(by node [0-9a-f]{32}\), and an invite works once; ask whoever made it for a new one/);
  });

  test("sign: a damaged join request; ping and status: no node running", async () => {
    expect(plain((await cli("sign", "trellis-req1:AAAA", "--root", root)).err)).toContain("the join request is damaged");
    const ping = await cli("ping", "b", "--api", closedUrl.slice(7));
    expect(ping.code).toBe(1);
    expect(plain(ping.err)).toContain("refused the connection; start the node with 'trellis up'");
    expect(ping.out).toBe("");
    const revoke = await cli("revoke", "0123456789abcdef0123456789abcdef", "--root", root, "--apply", "--api", closedUrl.slice(7));
    expect(revoke.code).toBe(1);
    expect(plain(revoke.err)).toContain("refused the connection; start the node with 'trellis up'");
  });
});
