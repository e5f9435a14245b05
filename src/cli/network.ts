// `trellis network create`: make a network's root key (keep it offline) and print the network id.
import { createNetwork } from "../trust/root.ts";
import { parse, UsageError } from "./args.ts";

export const help = `Usage: trellis network create NAME --out ROOTDIR

Create a network: an ML-DSA-65 root key that signs membership certificates and
revocations. ROOTDIR gets root.key (mode 0600; keep it offline) and network.json
(public). Prints the network id.

Then for each node: 'trellis join --request' on the node, 'trellis sign REQUEST
--root ROOTDIR' here, and 'trellis join --install CERT' on the node.
`;

export function run(argv: string[]): number {
  const { values, positionals } = parse(argv, { out: { type: "string", short: "o" } }, 2);
  if (values.help) return (process.stdout.write(help), 0);
  if (positionals[0] !== "create" || !positionals[1]) throw new UsageError("usage: trellis network create NAME --out ROOTDIR");
  if (!values.out) throw new UsageError("network create needs --out ROOTDIR");
  const root = createNetwork(positionals[1], values.out);
  console.log(root.id);
  console.error(`network ${root.name} created in ${values.out}; keep root.key offline`);
  return 0;
}
