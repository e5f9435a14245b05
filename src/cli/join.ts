// `trellis join`: ask for membership (--request) and install the signed certificate (--install).
import { readFileSync, existsSync } from "node:fs";
import { decodePublicIdentity, encodePublicIdentity, loadIdentity } from "../identity/identity.ts";
import { Networks } from "../trust/networks.ts";
import { TrustError } from "../trust/errors.ts";
import { parse, UsageError } from "./args.ts";
import { DEFAULT_STATE_DIR } from "./init.ts";
import { decodeToken, enrolmentKey, INVITE_SKEW_S, sha256hex, verifyEnrolment } from "../trust/enrolment.ts";
import { decodeNetworkInfo } from "../trust/root.ts";
import { issueCertificate, type Membership } from "../trust/certificate.ts";
import { encodeBundle } from "../trust/networks.ts";
import { sign, type NodeId } from "../identity/identity.ts";
import { USED_CONTEXT } from "../seed/enrol.ts";
import { fmtPrefix, grantsExit } from "../route/subnets.ts";
import { httpError, SeedError, seedFetch } from "./seed-http.ts";
import { IdentityError } from "../identity/identity.ts";

/** The token as a person pasted it, decoded, or a plain sentence saying it is not a whole token. */
function readToken(text: string) {
  try {
    return decodeToken(text);
  } catch (e) {
    if (!(e instanceof TrustError)) throw e;
    const t = text.trim();
    if (!t.startsWith("trellis1:")) throw new TrustError("malformed", `that is not an invite token (a token starts with trellis1:); paste the whole line 'trellis invite' printed`);
    throw new TrustError("malformed", "the invite token is damaged or cut short; copy the whole line 'trellis invite' printed and try again");
  }
}

/** Load this node's identity from `dir`, or say plainly what is missing there and what to run. */
function identityIn(dir: string) {
  if (!existsSync(dir)) throw new IdentityError("missing", `the state directory ${dir} does not exist; run 'trellis init --state ${dir}' first, or pass the --state you gave 'trellis init'`);
  return loadIdentity(dir);
}

/** Redeem an invite token: fetch and check the grant, sign our certificate, burn the invite, install. */
async function redeem(tokenText: string, self: NodeId, dir: string, chosenName?: string, ca: string | null = null): Promise<Membership> {
  const token = readToken(tokenText);
  const now = Math.floor(Date.now() / 1000);
  if (now > token.expires) throw new TrustError("expired", `this invite expired ${new Date(token.expires * 1000).toISOString()}; ask for a new one`);
  let bundle: string | undefined;
  const problems: string[] = [];
  for (const seed of token.seeds) {
    try {
      const res = await seedFetch(seed, `/v1/enrol/${token.hash}`, {}, undefined, ca);
      if (res.status === 409) throw usedError(res.text);
      if (res.status === 404) throw new SeedError(seed, "does not hold this invite (it may have restarted since the invite was made)", 404);
      if (!res.ok) throw httpError(seed, res.status, res.text);
      // The store keys an invite by its enrolment's own hash (src/seed/enrol.ts).
      let served = "";
      try {
        served = String(JSON.parse(res.text)?.enrolment ?? "");
      } catch {}
      if (sha256hex(Uint8Array.from(Buffer.from(served, "base64"))) !== token.hash) throw new SeedError(seed, "served a grant that does not match the token");
      bundle = res.text;
      break;
    } catch (e) {
      if (!(e instanceof SeedError)) throw e;
      problems.push(e.message);
    }
  }
  if (!bundle) throw new TrustError("io", `could not fetch the invite's grant: ${problems.join("; ")}; check that the seed runs and is reachable from here and run 'trellis join' again, or ask for a new invite`);
  let v, info;
  try {
    v = JSON.parse(bundle);
    info = decodeNetworkInfo(JSON.stringify(v.network), "grant");
  } catch {
    throw new TrustError("malformed", "the seed served a damaged grant for this invite; ask for a new invite");
  }
  if (info.id !== token.networkId) throw new TrustError("wrong-network", "the grant is for another network than the token");
  const enrolmentBytes = Uint8Array.from(Buffer.from(v.enrolment, "base64"));
  const e = verifyEnrolment(enrolmentBytes, info.rootPub, info.id);
  const key = enrolmentKey(token.seed);
  if (!Buffer.from(key.publicKey).equals(Buffer.from(e.publicKey))) throw new TrustError("bad-signature", "the invite token does not match its grant on the seed: it was altered or mistyped (tampered); copy the whole line 'trellis invite' printed, or ask for a new invite");
  const name = e.name || chosenName;
  if (!name) throw new UsageError("this invite leaves the name open: pass --name");
  // Valid from the earliest start the grant allows (its issue time less the 600 s skew members accept):
  // between two invite-signed certificates for one name members keep the one valid from earlier
  // (trust/registry.ts; the invite itself stays with the certificate a member met first). Its
  // lifetime counts from there too.
  const notBefore = e.issuedAt > 0 ? Math.min(now - 60, e.issuedAt - INVITE_SKEW_S) : now - 60;
  const cert = issueCertificate({ networkId: info.id, nodeId: self, name, ipv4: e.ipv4, ipv4Prefix: e.ipv4Prefix, tags: e.tags, subnets: e.subnets, notBefore, notAfter: notBefore + e.grantsFor, enrolment: enrolmentBytes }, key);
  // Burn the invite before installing: a used token must not work twice.
  const sig = Buffer.from(sign(key as never, USED_CONTEXT, Buffer.from(self))).toString("base64");
  const burnt = await Promise.all(token.seeds.map((s) => seedFetch(s, `/v1/enrol/${token.hash}/used`, { method: "POST", body: JSON.stringify({ node: self, sig }) }, undefined, ca).then((r) => [r.status, r.text] as const).catch(() => [0, ""] as const)));
  const used = burnt.find(([status]) => status === 409);
  if (used) throw usedError(used[1]);
  if (!burnt.some(([status]) => status === 200)) throw new TrustError("io", "no seed confirmed the invite as used, so this node did not join; check that the seed is reachable and run 'trellis join' again");
  return Networks.install(dir, self, encodeBundle(info, cert));
}

/** The seed says the invite was used (its body may name the node that used it). */
function usedError(body = ""): TrustError {
  const by = /used by node ([0-9a-f]{32})/.exec(body)?.[1];
  return new TrustError("used", `this invite was already used${by ? ` (by node ${by})` : ""}, and an invite works once; ask whoever made it for a new one`);
}

export const REQUEST_PREFIX = "trellis-req1:";

export const help = `Usage: trellis join TOKEN [--name N] [--state DIR]
       trellis join --request [--name N] [--state DIR]
       trellis join --install CERT [--state DIR]

With an invite TOKEN (from 'trellis invite'): fetch the network's signed grant from
a seed named in the token, sign this node's own membership certificate with the
invite's key, mark the invite used, and install the certificate. The node's
private keys never leave it; the root stays offline. --name picks the name when
the invite left it open.

Or join the offline way. --request prints a request (this node's public
identity and the name it asks for; no secret). Whoever holds the network's root
key signs it with 'trellis sign REQUEST --root ROOTDIR' and gives back a
certificate; --install CERT (the text, or a file holding it) checks that it
names this node and is validly signed, and stores it. The node presents it in
every handshake from then on (restart or SIGHUP the node).

  --state DIR   state directory (default ${DEFAULT_STATE_DIR})
  --ca FILE     PEM bundle of a private CA for the token's https:// seeds
`;

export function encodeRequest(pub: Uint8Array, name: string): string {
  return REQUEST_PREFIX + Buffer.concat([Buffer.from(pub), Buffer.from(name)]).toString("base64url");
}

export function decodeRequest(s: string): { pub: ReturnType<typeof decodePublicIdentity>; name: string } {
  const t = s.trim();
  if (!t.startsWith(REQUEST_PREFIX)) throw new TrustError("malformed", `that is not a join request (one starts with ${REQUEST_PREFIX}); paste the whole line 'trellis join --request' printed`);
  const b = Buffer.from(t.slice(REQUEST_PREFIX.length), "base64url");
  let pub;
  try {
    pub = decodePublicIdentity(b.subarray(0, 3168));
  } catch {
    throw new TrustError("malformed", "the join request is damaged or cut short; copy the whole line 'trellis join --request' printed");
  }
  return { pub, name: b.subarray(3168).toString() };
}

/** What a person reads after joining: the network, the name and address, and the rights the root granted (routes, exit). */
function joined(m: Membership & { networkId: string }): string {
  const routes = m.subnets.filter((s) => s.prefix > 0).map(fmtPrefix);
  const rights = [...(routes.length ? [`may route ${routes.join(", ")}`] : []), ...(grantsExit(m.subnets) ? ["may serve as an exit node"] : [])];
  return `joined network ${m.networkId} as ${m.name}${m.ipv4 ? ` (${m.ipv4})` : ""}${m.tags.length ? ` tags ${m.tags.join(",")}` : ""}${rights.length ? `, ${rights.join(" and ")}` : ""}, valid until ${new Date(m.notAfter * 1000).toISOString()}`;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { request: { type: "boolean" }, install: { type: "string" }, name: { type: "string" }, state: { type: "string" }, ca: { type: "string" } }, 1);
  if (values.help) return (process.stdout.write(help), 0);
  const dir = values.state ?? DEFAULT_STATE_DIR;
  const id = identityIn(dir);
  if (positionals[0]) {
    const m = await redeem(positionals[0], id.public.id, dir, values.name, values.ca ?? null);
    console.error(joined(m));
    return 0;
  }
  if (values.request) {
    const name = values.name ?? "";
    if (name && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw new UsageError(`--name ${JSON.stringify(name)}: use lowercase letters, digits and '-'`);
    console.log(encodeRequest(encodePublicIdentity(id.public), name));
    return 0;
  }
  if (values.install) {
    const text = existsSync(values.install) ? readFileSync(values.install, "utf8") : values.install;
    const m = Networks.install(dir, id.public.id, text);
    console.error(joined(m));
    return 0;
  }
  throw new UsageError("join needs a TOKEN, --request, or --install CERT");
}
