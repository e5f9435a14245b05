// Argument parsing shared by the CLI verbs: flags via node:util parseArgs, errors that name the flag.
import { parseArgs, type ParseArgsConfig } from "node:util";

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
