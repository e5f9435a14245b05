// `trellis up`: run the node in the foreground until SIGINT or SIGTERM (systemd runs this).
import { loadConfig, DEFAULT_CONFIG_PATH } from "../config/load.ts";
import { loadIdentity } from "../identity/identity.ts";
import { Node } from "../node/node.ts";
import { serveApi } from "../api/app.ts";
import { dropPrivileges, findUser, PrivilegeError, type Account, type KeptCap } from "../node/privileges.ts";
import type { Config } from "../config/schema.ts";
import { logger, setLogLevel } from "../log.ts";
import { parse, UsageError } from "./args.ts";
import { scheduleTrim } from "../node/trim.ts";

export const help = `Usage: trellis up [--config FILE] [--exit-node NAME|auto]

Run this node in the foreground: open the TUN interface, reach the seeds,
link to the peers in [network] allow and carry their packets. Logs go to
stderr. SIGINT or SIGTERM stop it cleanly (links closed, TUN removed);
SIGHUP re-reads the config and applies the allow-list without dropping
sessions (a bad config is reported and the running one kept).

  --config FILE   config file (default ${DEFAULT_CONFIG_PATH}; see config/trellis.toml)
  --exit-node N   send internet traffic through member N (or the best exit: auto),
                  as [routes] exit_node does; this node's own links stay on the underlay
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: "string", short: "c" }, "exit-node": { type: "string" } });
  if (values.help) return (process.stdout.write(help), 0);
  const exitFlag = values["exit-node"];
  if (exitFlag !== undefined && exitFlag !== "auto" && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(exitFlag)) throw new UsageError(`--exit-node ${JSON.stringify(exitFlag)}: a member's name, or auto`);
  // The flag wins over [routes] exit_node, on SIGHUP too.
  const load = () => {
    const c = loadConfig(values.config);
    if (exitFlag !== undefined) c.routes.exitNode = exitFlag;
    return c;
  };
  const config = load();
  setLogLevel(config.node.logLevel);
  const log = logger("up");
  // werift and the sockets under it sometimes throw or reject from their own callbacks (a peer
  // vanishing mid-DTLS, an ICMP error): one peer's trouble must not take the node down. Log it with
  // its stack and carry on; state is per peer, so nothing else is lost.
  process.on("uncaughtException", (e) => log("warn", `uncaught exception (carrying on): ${e?.stack ?? e}`));
  process.on("unhandledRejection", (e) => log("warn", `unhandled rejection (carrying on): ${(e as Error)?.stack ?? e}`));
  const account = runAs(config.node.user, log);
  const identity = loadIdentity(config.node.stateDir);
  const node = new Node(config, identity);
  log("info", `node ${identity.public.id} (${config.node.name}) starting${config.file ? ` from ${config.file}` : ""}`);
  await node.start();
  const api = serveApi(node, config.api.listen.host, config.api.listen.port, config.node.stateDir);
  log("info", `api on http://${config.api.listen.host}:${api.port}`);
  // Everything that needed root is done (TUN open, ports bound): from here on the node is `account`.
  if (account) {
    try {
      dropPrivileges(account, config.node.stateDir, keptCaps(config));
    } catch (e) {
      api.stop();
      await node.stop();
      throw e;
    }
    if (config.paths.decisionLog && !config.paths.decisionLog.startsWith(config.node.stateDir + "/"))
      log("warn", `[paths] decision_log ${config.paths.decisionLog} is outside the state directory: ${account.name} may not be able to write it`);
    const kept = keptCaps(config);
    log("info", `running as ${account.name} (uid ${account.uid}, gid ${account.gid}) with ${kept.length ? `only ${kept.map((c) => `CAP_${c.toUpperCase()}`).join(" and ")} (for [routes]: routes, forwarding, nftables${kept.includes("net_raw") ? ", the LAN check's ping" : ""})` : "no capabilities"}`);
  }
  // Start-up's share of the executable's pages goes back once it is over (src/node/trim.ts).
  scheduleTrim();

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log("info", `${signal}: stopping`);
      api.stop();
      await node.stop();
      resolve(0);
    };
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGHUP", () => {
      try {
        const next = load();
        setLogLevel(next.node.logLevel);
        node.reload(next);
        log("info", `SIGHUP: reloaded ${next.file ?? "defaults"}`);
      } catch (e) {
        // A bad edit must not take a running node down: keep the config it has.
        log("warn", `SIGHUP: config not reloaded, keeping the running one: ${(e as Error).message}`);
      }
    });
  });
}

/**
 * Whom to become after start: nobody when not root (systemd already started us as our own user);
 * else [node] user, or "trellis" when that user exists. "root" keeps root, loudly.
 */
function runAs(user: string | undefined, log: ReturnType<typeof logger>): Account | undefined {
  const uid = process.getuid?.();
  if (uid !== 0) return undefined;
  if (user === "root" || user === "0") {
    log("warn", "[node] user = root: the node keeps uid 0 and every capability while it parses network input");
    return undefined;
  }
  const name = user ?? "trellis";
  const account = findUser(name);
  if (!account) {
    if (user === undefined) {
      log("warn", `running as root: no user "trellis" to drop to (create one, e.g. useradd --system trellis, or set [node] user)`);
      return undefined;
    }
    throw new PrivilegeError("no-such-user", `[node] user ${JSON.stringify(user)}: no such user in /etc/passwd`);
  }
  if (account.uid === 0) throw new PrivilegeError("no-such-user", `[node] user ${JSON.stringify(name)} is uid 0: name an unprivileged user`);
  return account;
}

/** What [routes] needs after the drop: CAP_NET_ADMIN to change routes, sysctls and nftables at runtime and stop; CAP_NET_RAW for the LAN check's ping. */
export function keptCaps(c: Config): KeptCap[] {
  const r = c.routes;
  if (!r.advertise.length && !r.exit && !r.accept && !r.exitNode) return [];
  return r.check ? ["net_admin", "net_raw"] : ["net_admin"];
}
