// trellis command line: dispatches a verb to its module (one file per verb in src/cli/).
// werift would make DTLS certificates with @peculiar/x509 (and its DI container, which needs the Reflect
// metadata polyfill loaded first); links bring their own (src/tether/dtlscert.ts), so a stub stands in
// for the library before any verb loads werift: ~6.5 MB less for a running node. The binary is built
// with the stub in its place (scripts/build.ts).
import { stubX509 } from "../tether/x509stub.ts";
import { VERSION } from "../version.ts";
import { UsageError } from "./args.ts";
import { isTyped, systemMessage } from "./main-errors.ts";

const HELP = `trellis ${VERSION} — a post-quantum overlay network in one binary

Usage: trellis <verb> [flags]      (trellis <verb> --help for each verb)

  init [--state DIR]               create this node's identity, print its node id
  up [--config FILE]               run the node in the foreground (systemd runs this)
  status [--json]                  this node, its peers, the path to each
  ping NODE [--count N]            reach NODE (name, node id or overlay address): path and RTT
  relays [--json]                  relay scores as the path policy sees them
  netcheck [--json] [--peer NAME]  UDP, NAT behaviour, seeds, path MTU: what works here and why
  version                          print the version

  network create NAME --out DIR    create a network root key (kept offline), print the network id
  invite --root DIR --seed URL     print a one-line invite token (the root stays offline)
  join TOKEN                       redeem an invite: obtain the membership certificate
  join --request | --install CERT  the offline way: ask for membership / install the certificate
  sign REQUEST --root DIR          sign a join request into a membership certificate
  revoke NODE --root DIR [--apply] sign a revocation (and hand it to the local node)
  policy sign RULES --root DIR     sign a tag policy (which tags may reach which)

Config: /etc/trellis/trellis.toml by default (annotated example: config/trellis.toml).
The node's live page: http://127.0.0.1:7080/ (its [api] listen address).
Docs: README.md, docs/PROTOCOL.md.
`;

stubX509();

type Verb = { run(argv: string[]): number | Promise<number>; help: string };
const VERBS: Record<string, () => Promise<Verb>> = {
  init: () => import("./init.ts"),
  up: () => import("./up.ts"),
  status: () => import("./status.ts"),
  ping: () => import("./ping.ts"),
  relays: () => import("./relays.ts"),
  netcheck: () => import("./netcheck.ts"),
  network: () => import("./network.ts"),
  join: () => import("./join.ts"),
  sign: () => import("./sign.ts"),
  revoke: () => import("./revoke.ts"),
  policy: () => import("./policy.ts"),
  invite: () => import("./invite.ts"),
};

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === "help" || verb === "--help" || verb === "-h") {
    const sub = verb === "help" ? rest[0] : undefined;
    if (sub && VERBS[sub]) process.stdout.write((await VERBS[sub]()).help);
    else process.stdout.write(HELP);
    return verb === undefined ? 2 : 0;
  }
  if (verb === "version" || verb === "--version") {
    console.log(`trellis ${VERSION} (bun ${Bun.version}, ${process.platform}-${process.arch})`);
    return 0;
  }
  const load = VERBS[verb];
  if (!load) throw new UsageError(`unknown verb ${JSON.stringify(verb)}`);
  return (await load()).run(rest);
}

const argvVerb = () => process.argv[2] ?? "trellis";

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    if (e instanceof UsageError) {
      console.error(`trellis: ${e.message}\nTry 'trellis --help'.`);
      process.exit(2);
    }
    // Typed errors from config, identity, tun... carry a message meant for people; anything else is a bug,
    // and its JavaScript text is not (TRELLIS_DEBUG shows it).
    if (isTyped(e)) console.error(`trellis: ${e.message}`);
    else if (systemMessage(e)) console.error(`trellis: ${systemMessage(e)}`);
    else console.error(`trellis: ${argvVerb()} failed unexpectedly (a bug in trellis); run it again with TRELLIS_DEBUG=1 to see why, and report that`);
    if (process.env.TRELLIS_DEBUG) console.error(e.stack);
    process.exit(1);
  },
);
