// `trellis sign`: the root signs a join request into a membership certificate (offline).
import { issueCertificate } from "../trust/certificate.ts";
import { encodeBundle } from "../trust/networks.ts";
import { loadRoot } from "../trust/root.ts";
import { decodeRequest } from "./join.ts";
import { parse, parseGrant, UsageError } from "./args.ts";

export const help = `Usage: trellis sign REQUEST --root ROOTDIR [--name N] [--tags a,b] [--ipv4 A]
                    [--subnets 10.1.0.0/24,...] [--exit] [--expires 30d]

Sign a join request (from 'trellis join --request') with the network's root key
and print the membership certificate for 'trellis join --install'. The overlay
IPv4 address is part of what is signed: peers accept packets from it only.

  --name N        the node's name (default: the one in the request)
  --tags a,b      tags for the network's policy
  --ipv4 A[/N]    the node's overlay IPv4 address, and the network's prefix length (default /10)
  --subnets L     prefixes the node may route for ([routes] advertise takes a subset)
  --exit          the node may serve as an exit node ([routes] exit): grants 0.0.0.0/0 and ::/0
  --expires D     validity from now: 30d, 12h, 90m (default 365d)
`;

export function parseDurationSeconds(s: string): number {
  const m = /^(\d+)([mhd])$/.exec(s);
  if (!m || Number(m[1]) === 0) throw new UsageError(`--expires ${JSON.stringify(s)}: use a duration like 30d, 12h or 90m`);
  return Number(m[1]) * { m: 60, h: 3600, d: 86400 }[m[2] as "m"];
}

export function run(argv: string[]): number {
  const { values, positionals } = parse(
    argv,
    { root: { type: "string" }, name: { type: "string" }, tags: { type: "string" }, ipv4: { type: "string" }, subnets: { type: "string" }, exit: { type: "boolean" }, expires: { type: "string" } },
    1,
  );
  if (values.help) return (process.stdout.write(help), 0);
  if (!positionals[0]) throw new UsageError("sign needs a REQUEST");
  if (!values.root) throw new UsageError("sign needs --root ROOTDIR");
  const req = decodeRequest(positionals[0]);
  const root = loadRoot(values.root);
  const name = values.name ?? req.name;
  if (!name) throw new UsageError("the request names no node: pass --name");
  const grant = parseGrant(values);
  const now = Math.floor(Date.now() / 1000);
  const cert = issueCertificate(
    { networkId: root.id, nodeId: req.pub.id, name, ...grant, notBefore: now - 300, notAfter: now + parseDurationSeconds(values.expires ?? "365d") },
    root,
  );
  console.log(encodeBundle(root, cert));
  console.error(`signed ${name} (${req.pub.id}) into network ${root.name}`);
  return 0;
}
