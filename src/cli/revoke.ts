// `trellis revoke`: the root signs a revocation; --apply hands it to the local node, which passes it on.
import { issueRevocation } from "../trust/revocation.ts";
import { loadRoot } from "../trust/root.ts";
import { parseNodeId } from "../identity/identity.ts";
import { apiBase, apiHeaders, apiPost, ApiError } from "./api-client.ts";
import { parse, UsageError } from "./args.ts";

export const help = `Usage: trellis revoke NODE --root ROOTDIR [--reason TEXT] [--apply] [--config FILE]

Sign a revocation of NODE (a node id) with the network's root key and print the
record. Any member accepts it from anyone after checking the signature, stores
it, passes it on to its peers and closes its session with NODE. --apply sends it
to the node running here (its API), which starts spreading it.
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { root: { type: "string" }, reason: { type: "string" }, apply: { type: "boolean" }, config: { type: "string" }, api: { type: "string" } }, 1);
  if (values.help) return (process.stdout.write(help), 0);
  if (!positionals[0] || !values.root) throw new UsageError("usage: trellis revoke NODE --root ROOTDIR");
  const root = loadRoot(values.root);
  const rec = issueRevocation({ networkId: root.id, nodeId: parseNodeId(positionals[0]), time: Math.floor(Date.now() / 1000), reason: values.reason ?? "" }, root);
  const text = Buffer.from(rec).toString("base64");
  console.log(text);
  if (values.apply) {
    try {
      await apiPost(apiBase(values), "/v1/revocations", text, apiHeaders(values));
    } catch (e) {
      // Not reachable: the API error says so. Refused: say what the node said.
      if (e instanceof ApiError && e.status !== undefined) throw new ApiError(`the node refused the revocation: ${e.message}`, e.status);
      throw e;
    }
    console.error("the local node took it and is passing it on");
  }
  return 0;
}
