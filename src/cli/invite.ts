// `trellis invite`: a one-line token that lets a new node join while the root key stays offline.
import { randomBytes } from "node:crypto";
import { encodeToken, enrolmentKey, issueEnrolment, sha256hex } from "../trust/enrolment.ts";
import { encodeNetworkInfo, loadRoot } from "../trust/root.ts";
import { parseSeed } from "../config/schema.ts";
import { parse, parseGrant, UsageError } from "./args.ts";
import { parseDurationSeconds } from "./sign.ts";
import { httpError, SeedError, seedFetch } from "./seed-http.ts";

export const help = `Usage: trellis invite --root ROOTDIR --seed URL [--seed URL]... [--name N] [--tags a,b]
                      [--ipv4 A[/N]] [--subnets L] [--exit] [--expires 24h] [--valid 365d]

Print a one-line invite token (a few hundred characters, fit for a chat). It
holds a short-lived enrolment key; the root signs that key's right to grant one
membership (the --name, --ipv4, --tags and --subnets given here, and no more), and the signed grant is
published on the seeds (it is too big for the token; the token carries its
hash). 'trellis join TOKEN' on the new node fetches it, signs the node's own
certificate with the enrolment key and burns the invite, with the root offline.

Anyone holding the token can use it once, until it expires: send it privately.

  --subnets L   prefixes the new node may route for (10.1.0.0/24,...; default none)
  --exit        the new node may serve as an exit node (grants 0.0.0.0/0 and ::/0)
  --expires D   how long the token can be used (default 24h)
  --valid D     how long the membership it grants lasts (default 365d)
  --ca FILE     PEM bundle of a private CA for https:// seeds (beside the system's)

A seed URL is http://HOST:PORT (labs), https://HOST:PORT (checked against the
system's CAs and --ca), or https://HOST:PORT#sha256=FINGERPRINT for a
self-signed seed: the fingerprint as 'openssl x509 -noout -fingerprint -sha256
-in cert.pem' prints it. The URLs go into the token as given.
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    root: { type: "string" }, seed: { type: "string", multiple: true }, name: { type: "string" }, tags: { type: "string" },
    ipv4: { type: "string" }, subnets: { type: "string" }, exit: { type: "boolean" }, expires: { type: "string" }, valid: { type: "string" }, ca: { type: "string" },
  });
  const ca = values.ca ?? null;
  if (values.help) return (process.stdout.write(help), 0);
  if (!values.root) throw new UsageError("invite needs --root ROOTDIR");
  const seeds = (values.seed ?? []).map((s) => {
    try {
      return parseSeed(s);
    } catch {
      throw new UsageError(`--seed ${JSON.stringify(s)}: want http://HOST:PORT, https://HOST:PORT or https://HOST:PORT#sha256=FINGERPRINT`);
    }
  });
  if (!seeds.length) throw new UsageError("invite needs at least one --seed URL to publish the grant on (or use 'trellis join --request' and 'trellis sign')");
  const grant = parseGrant(values);
  const name = values.name ?? "";
  if (name && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw new UsageError(`--name ${JSON.stringify(name)}: use lowercase letters, digits and '-'`);
  const root = loadRoot(values.root);
  const now = Math.floor(Date.now() / 1000);
  const expires = now + parseDurationSeconds(values.expires ?? "24h");
  const seed = randomBytes(32);
  const enrolment = issueEnrolment(
    { networkId: root.id, publicKey: enrolmentKey(seed).publicKey, issuedAt: now, usableUntil: expires, grantsFor: parseDurationSeconds(values.valid ?? "365d"), name, ...grant },
    root,
  );
  const bundle = JSON.stringify({ network: JSON.parse(encodeNetworkInfo(root)), enrolment: Buffer.from(enrolment).toString("base64") });
  // The store keys an invite by its enrolment's own hash (padding the JSON makes no new entry).
  const hash = sha256hex(enrolment);
  let published = 0;
  const problems: SeedError[] = [];
  for (const s of seeds) {
    try {
      const res = await seedFetch(s, `/v1/enrol/${hash}`, { method: "PUT", body: bundle }, undefined, ca);
      if (res.ok) published++;
      else throw httpError(s, res.status, res.text);
    } catch (e) {
      if (!(e instanceof SeedError)) throw e;
      problems.push(e);
    }
  }
  if (!published) throw new SeedError(problems[0]!.seed, `${problems.map((p) => p.message).join("; ").replace(/^seed \S+ /, "")}, so no seed holds the invite and a token would not work; check that the seed is running and that --seed gives its address and port, then run 'trellis invite' again`);
  for (const p of problems) console.error(`warning: ${p.message}; the invite works through the other seed(s)`);
  console.log(encodeToken({ networkId: root.id, seed, hash, expires, seeds }));
  console.error(`invite for network ${root.name}${name ? ` as ${name}` : ""}, usable once until ${new Date(expires * 1000).toISOString()}, published on ${published} seed(s)`);
  return 0;
}
