// trellis command line: dispatches a verb to its module (one file per verb in src/cli/).
import { VERSION } from "../version.ts";

const [verb, ...rest] = process.argv.slice(2);
if (verb === "version" || verb === "--version") {
  console.log(`trellis ${VERSION} (bun ${Bun.version}, ${process.platform}-${process.arch})`);
  process.exit(0);
}
console.error(`trellis: unknown verb ${JSON.stringify(verb ?? "")}; try 'trellis --help'`);
process.exit(2);
