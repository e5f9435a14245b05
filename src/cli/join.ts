// `trellis join`: ask for membership (--request) and install the signed certificate (--install).
import { readFileSync, existsSync } from "node:fs";
import { decodePublicIdentity, encodePublicIdentity, loadIdentity } from "../identity/identity.ts";
import { Networks } from "../trust/networks.ts";
import { TrustError } from "../trust/errors.ts";
import { parse, UsageError } from "./args.ts";
import { DEFAULT_STATE_DIR } from "./init.ts";

export const REQUEST_PREFIX = "trellis-req1:";

export const help = `Usage: trellis join --request [--name N] [--state DIR]
       trellis join --install CERT [--state DIR]

Join a network the offline way. --request prints a request (this node's public
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

export function run(argv: string[]): number {
  const { values } = parse(argv, { request: { type: "boolean" }, install: { type: "string" }, name: { type: "string" }, state: { type: "string" } });
  if (values.help) return (process.stdout.write(help), 0);
  const dir = values.state ?? DEFAULT_STATE_DIR;
  const id = loadIdentity(dir);
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
  throw new UsageError("join needs --request or --install CERT (invite tokens are not done yet)");
}
