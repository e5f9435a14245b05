// `trellis join`: ask for membership (--request) and install the signed certificate (--install).
import { readFileSync, existsSync } from "node:fs";
import { decodePublicIdentity, encodePublicIdentity, loadIdentity } from "../identity/identity.ts";
import { Networks } from "../trust/networks.ts";
import { TrustError } from "../trust/errors.ts";
import { parse, UsageError } from "./args.ts";
import { DEFAULT_STATE_DIR } from "./init.ts";
import { decodeToken, enrolmentKey, sha256hex, verifyEnrolment } from "../trust/enrolment.ts";
import { decodeNetworkInfo } from "../trust/root.ts";
import { issueCertificate, type Membership } from "../trust/certificate.ts";
import { encodeBundle } from "../trust/networks.ts";
import { sign, type NodeId } from "../identity/identity.ts";
import { USED_CONTEXT } from "../seed/enrol.ts";

/** Redeem an invite token: fetch and check the grant, sign our certificate, burn the invite, install. */
async function redeem(tokenText: string, self: NodeId, dir: string, chosenName?: string): Promise<Membership> {
  const token = decodeToken(tokenText);
  const now = Math.floor(Date.now() / 1000);
  if (now > token.expires) throw new TrustError("expired", `this invite expired ${new Date(token.expires * 1000).toISOString()}; ask for a new one`);
  let bundle: string | undefined;
  const problems: string[] = [];
  for (const seed of token.seeds) {
    try {
      const res = await fetch(`${seed}/v1/enrol/${token.hash}`);
      const text = await res.text();
      if (res.status === 409) throw new TrustError("used", JSON.parse(text).error);
      if (!res.ok) throw new Error(`${res.status} ${text.slice(0, 200)}`);
      if (sha256hex(Buffer.from(text)) !== token.hash) throw new Error("served a grant that does not match the token");
      bundle = text;
      break;
    } catch (e) {
      if (e instanceof TrustError) throw e;
      problems.push(`${seed}: ${(e as Error).message}`);
    }
  }
  if (!bundle) throw new TrustError("io", `no seed in the invite served its grant (${problems.join("; ")})`);
  const v = JSON.parse(bundle);
  const info = decodeNetworkInfo(JSON.stringify(v.network), "grant");
  if (info.id !== token.networkId) throw new TrustError("wrong-network", "the grant is for another network than the token");
  const enrolmentBytes = Uint8Array.from(Buffer.from(v.enrolment, "base64"));
  const e = verifyEnrolment(enrolmentBytes, info.rootPub, info.id);
  const key = enrolmentKey(token.seed);
  if (!Buffer.from(key.publicKey).equals(Buffer.from(e.publicKey))) throw new TrustError("bad-signature", "the token's key does not match the grant: the token is tampered");
  const name = e.name || chosenName;
  if (!name) throw new UsageError("this invite leaves the name open: pass --name");
  const cert = issueCertificate({ networkId: info.id, nodeId: self, name, ipv4: e.ipv4, ipv4Prefix: e.ipv4Prefix, tags: e.tags, subnets: e.subnets, notBefore: now - 60, notAfter: now - 60 + e.grantsFor, enrolment: enrolmentBytes }, key);
  // Burn the invite before installing: a used token must not work twice.
  const sig = Buffer.from(sign(key as never, USED_CONTEXT, Buffer.from(self))).toString("base64");
  const burnt = await Promise.all(token.seeds.map((s) => fetch(`${s}/v1/enrol/${token.hash}/used`, { method: "POST", body: JSON.stringify({ node: self, sig }) }).then(async (r) => [r.status, await r.text()] as const).catch(() => [0, ""] as const)));
  const used = burnt.find(([status]) => status === 409);
  if (used) throw new TrustError("used", JSON.parse(used[1]).error);
  if (!burnt.some(([status]) => status === 200)) throw new TrustError("io", "no seed confirmed the invite as used; try again");
  return Networks.install(dir, self, encodeBundle(info, cert));
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
`;

export function encodeRequest(pub: Uint8Array, name: string): string {
  return REQUEST_PREFIX + Buffer.concat([Buffer.from(pub), Buffer.from(name)]).toString("base64url");
}

export function decodeRequest(s: string): { pub: ReturnType<typeof decodePublicIdentity>; name: string } {
  const t = s.trim();
  if (!t.startsWith(REQUEST_PREFIX)) throw new TrustError("malformed", `a join request starts with ${REQUEST_PREFIX}`);
  const b = Buffer.from(t.slice(REQUEST_PREFIX.length), "base64url");
  const pub = decodePublicIdentity(b.subarray(0, 3168));
  return { pub, name: b.subarray(3168).toString() };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { request: { type: "boolean" }, install: { type: "string" }, name: { type: "string" }, state: { type: "string" } }, 1);
  if (values.help) return (process.stdout.write(help), 0);
  const dir = values.state ?? DEFAULT_STATE_DIR;
  const id = loadIdentity(dir);
  if (positionals[0]) {
    const m = await redeem(positionals[0], id.public.id, dir, values.name);
    console.error(`joined network ${m.networkId} as ${m.name}${m.ipv4 ? ` (${m.ipv4})` : ""}${m.tags.length ? ` tags ${m.tags.join(",")}` : ""}, valid until ${new Date(m.notAfter * 1000).toISOString()}`);
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
    console.error(`joined network ${m.networkId} as ${m.name}${m.ipv4 ? ` (${m.ipv4})` : ""}${m.tags.length ? ` tags ${m.tags.join(",")}` : ""}, valid until ${new Date(m.notAfter * 1000).toISOString()}`);
    return 0;
  }
  throw new UsageError("join needs a TOKEN, --request, or --install CERT");
}
