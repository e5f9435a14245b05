// `trellis policy sign`: the root signs a tag policy; --apply hands it to the local node, which spreads it.
import { readFileSync } from "node:fs";
import { issuePolicy } from "../trust/policy.ts";
import { loadRoot } from "../trust/root.ts";
import { apiBase, apiHeaders, apiPost, ApiError } from "./api-client.ts";
import { parse, UsageError } from "./args.ts";

export const help = `Usage: trellis policy sign RULES.json --root ROOTDIR --version N [--apply]

Sign a tag policy for the network. RULES.json is a list of rules:
  [{"from": "server", "to": "laptop"}, {"from": "*", "to": "server", "proto": "tcp", "ports": "443"}]
A rule lets nodes with tag "from" open flows to nodes with tag "to" ("*" = any);
replies to a flow always pass. Without any policy every member reaches every
member. Enforced by each receiver. The highest version wins; members pass it on
and apply it without a restart. --apply sends it to the node running here.
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { root: { type: "string" }, version: { type: "string" }, apply: { type: "boolean" }, config: { type: "string" }, api: { type: "string" } }, 2);
  if (values.help) return (process.stdout.write(help), 0);
  if (positionals[0] !== "sign" || !positionals[1] || !values.root || !values.version) throw new UsageError("usage: trellis policy sign RULES.json --root ROOTDIR --version N");
  const version = Number(values.version);
  if (!Number.isInteger(version) || version < 1) throw new UsageError(`--version must be a positive integer, got ${JSON.stringify(values.version)}`);
  let rules: unknown;
  try {
    rules = JSON.parse(readFileSync(positionals[1], "utf8"));
  } catch (e) {
    throw new UsageError(`${positionals[1]}: ${(e as Error).message}`);
  }
  const root = loadRoot(values.root);
  const text = Buffer.from(issuePolicy({ networkId: root.id, version, rules: rules as never }, root)).toString("base64");
  console.log(text);
  if (values.apply) {
    try {
      await apiPost(apiBase(values), "/v1/policy", text, apiHeaders(values));
    } catch (e) {
      // Not reachable: the API error says so. Refused: say what the node said.
      if (e instanceof ApiError && e.status !== undefined) throw new ApiError(`the node refused the policy: ${e.message}`, e.status);
      throw e;
    }
    console.error(`the local node installed policy version ${version} and is passing it on`);
  }
  return 0;
}
