// Argument parsing shared by the CLI verbs: flags via node:util parseArgs, errors that name the flag.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseIpv4 } from "../identity/address.ts";
import { EXIT_GRANT, parseSubnetList, type Subnet } from "../trust/subnet.ts";

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parse `argv` for one verb; `--help` is always accepted. */
export function parse<O extends Options>(argv: string[], options: O, positionals = 0) {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: positionals > 0, strict: true });
    if (r.positionals.length > positionals) throw new UsageError(`unexpected argument ${JSON.stringify(r.positionals[positionals])}`);
    return r;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message.replace(/^TypeError \[.*?\]: /, ""));
  }
}

/** What a membership grants, from the flags `invite` and `sign` share: --ipv4 A[/N] (default /10), --tags, --subnets, --exit. */
export function parseGrant(values: { ipv4?: string; tags?: string; subnets?: string; exit?: boolean }): { ipv4: string | undefined; ipv4Prefix: number; tags: string[]; subnets: Subnet[] } {
  const [ipv4, prefixText] = (values.ipv4 ?? "").split("/");
  const ipv4Prefix = prefixText === undefined ? 10 : Number(prefixText);
  if (values.ipv4 && (!parseIpv4(ipv4) || !Number.isInteger(ipv4Prefix) || ipv4Prefix < 1 || ipv4Prefix > 32))
    throw new UsageError(`--ipv4 ${JSON.stringify(values.ipv4)}: want an address like 100.64.1.7 or 100.64.1.7/24`);
  let subnets: Subnet[];
  try {
    subnets = parseSubnetList(values.subnets ?? "");
  } catch {
    throw new UsageError(`--subnets ${JSON.stringify(values.subnets)}: want prefixes like 10.1.0.0/24,fd00:1::/64`);
  }
  // The exit right is the default route: a node granted it may carry members' traffic to anywhere.
  if (values.exit) subnets.push(...EXIT_GRANT.filter((g) => !subnets.some((s) => s.family === g.family && s.prefix === 0)));
  return { ipv4: ipv4 || undefined, ipv4Prefix, tags: values.tags ? values.tags.split(",").filter(Boolean) : [], subnets };
}
