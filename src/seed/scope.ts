// Whom a seed serves: which nodes it registers and which networks' invites it stores.
//
// [relay] networks = [ids] names the networks; by default they are every network this node is a member
// of (a seed can check a member's certificate only against a root key it holds, so a listed network this
// node is not in serves nobody, and the log says so). A seed in no network serves everyone (a lab or a
// bootstrap seed); allow-listed ids and the node itself are always registered.
import type { Log } from "../log.ts";
import type { NodeId, PublicIdentity } from "../identity/identity.ts";
import type { Member, Networks } from "../trust/networks.ts";
import type { InviteScope } from "./enrol.ts";

export interface SeedScope {
  admit(remote: PublicIdentity, certs: string[]): true | string;
  invites: InviteScope;
}

export function seedScope(o: {
  self: NodeId;
  networks: () => Networks;
  allow: () => Set<NodeId>;
  ids: string[] | null;
  log: Log;
}): SeedScope {
  const served = (): Member[] | null => {
    const mine = o.networks().members;
    if (o.ids) return mine.filter((m) => o.ids!.includes(m.info.id));
    return mine.length ? mine : null;
  };
  const now = served();
  if (o.ids) for (const id of o.ids) if (!now?.some((m) => m.info.id === id)) o.log("warn", `[relay] networks: this node is not a member of ${id}, so the seed cannot check its members and serves none of them`);
  o.log("info", now ? `seed serves networks ${now.map((m) => `${m.info.name} (${m.info.id})`).join(", ") || "none"} and allow-listed nodes` : "seed serves every node (this node is in no network and [relay] networks is not set)");
  return {
    admit(remote, certs) {
      if (remote.id === o.self || o.allow().has(remote.id)) return true;
      const s = served();
      if (!s) return true;
      const r = o.networks().check(remote.id, certs);
      if (typeof r === "string") return `node ${remote.id} is not in [network] allow and not a member of a network this seed serves (${r})`;
      if (!s.includes(r.member)) return `node ${remote.id} is a member of network ${r.member.info.name}, which this seed does not serve`;
      return true;
    },
    invites: {
      roots() {
        const s = served();
        return s ? new Map(s.map((m) => [m.info.id, m.info.rootPub])) : undefined;
      },
    },
  };
}
