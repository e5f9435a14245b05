// `trellis init`: create this node's identity in the state directory and print its node id.
import { ipv6Of } from "../identity/address.ts";
import { IDENTITY_KEY_FILE, initIdentity } from "../identity/identity.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parse } from "./args.ts";

export const DEFAULT_STATE_DIR = "/var/lib/trellis";

export const help = `Usage: trellis init [--state DIR]

Create this node's identity: ML-DSA-65 signing keys and ML-KEM-768 + X25519
agreement keys, made here and never sent anywhere. The private key file is
written with mode 0600. Prints only the node id on stdout; its overlay IPv6
address goes to stderr. Running it again keeps the existing identity.

  --state DIR   state directory (default ${DEFAULT_STATE_DIR}; must match [node] state_dir)
`;

export function run(argv: string[]): number {
  const { values } = parse(argv, { state: { type: "string" } });
  if (values.help) return (process.stdout.write(help), 0);
  const dir = values.state ?? DEFAULT_STATE_DIR;
  const existed = existsSync(join(dir, IDENTITY_KEY_FILE));
  const id = initIdentity(dir);
  console.log(id.public.id);
  console.error(`${existed ? "existing" : "new"} identity in ${dir}; overlay address ${ipv6Of(id.public.id)}`);
  return 0;
}
