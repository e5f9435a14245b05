// The node's [routes]: a router answers route queries with what it advertises and is healthy; a member finds routers, keeps their adverts and routes by them.
//
// Router side: `[routes] advertise` must lie inside the node's root-signed grant (else a config error
// naming the key); at start the host is set up (hostnet.ts: forwarding, SNAT table) and the LAN side is
// watched (LanHealth); a route query from a peer is answered with the prefixes that are healthy now.
// Member side (`[routes] accept = true`): routers are found by asking our relays for members whose
// certificates grant subnets (members.ts, QUERY_ROUTER), queried every QUERY_EVERY_MS through the
// end-to-end session; their adverts (bounded by their certificates, route/subnets.ts) become routes
// on our TUN and nothing else, and the inside path sends each packet to the best router.
import type { Config } from "../config/schema.ts";
import type { NodeId } from "../identity/identity.ts";
import { inOverlayPrefix6 } from "../identity/address.ts";
import type { Log } from "../log.ts";
import type { Membership } from "../trust/certificate.ts";
import { subnetBytes, type Subnet } from "../trust/subnet.ts";
import { inPrefix } from "../datapath/ip.ts";
import type { MemberQuery } from "./members.ts";
import { HostRoutes, LanHealth, type Runner } from "./hostnet.ts";
import {
  CONTROL_ROUTE_ADVERT, CONTROL_ROUTE_QUERY, decodeAdvert, decodeQuerySeq, encodeAdvert, fmtPrefix, grantsExit, outsideGrant, QUERY_EVERY_MS, RouteError, RouteTable, type RouteView,
} from "../route/subnets.ts";

/** How often a member asks its relays for routers: often until it knows one, then now and then. */
const ASK_EVERY_MS = 1000;
const ASK_KNOWN_EVERY_MS = 10_000;
const ROUTER_INDICES = 8;
/** A router silent this long gets a fresh handshake (a restarted router cannot open the old session's packets). */
const RESET_SILENT_MS = 3000;

export interface RoutesDeps {
  config: Config;
  self: NodeId;
  /** Every subnet our certificates grant (the root's word; allow-list entries grant nothing). */
  grant: Subnet[];
  /** Send a control payload through the end-to-end session (sealed; a handshake starts if needed). */
  send(to: NodeId, payload: Uint8Array): void;
  /** Whether `to` can be sent to now; when not, the node starts what it takes (keys lookup, link). */
  reach(to: NodeId): boolean;
  /** Forget the session with a router that stopped answering (it may have restarted): the next query handshakes afresh. */
  resetSession(to: NodeId): void;
  /** Ask our relays a member query (routers by index). */
  ask(q: MemberQuery): void;
  /** The membership `id` proved (its certificate), undefined for allow-listed nodes and strangers. */
  membership(id: NodeId): Membership | undefined;
  name(id: NodeId): string | null;
  log: Log;
  runner?: Runner;
  now?: () => number;
}

export interface RoutesStatus {
  /** What this node advertises, whether its LAN side is healthy, and the device each prefix leaves by. */
  advertise: { prefix: string; device: string | null }[];
  healthy: boolean;
  health: string;
  snat: boolean;
  exit: boolean;
  accept: boolean;
  /** Routes this member uses: each prefix, its routers and the one in use. */
  routes: RouteView[];
}

export class Routes {
  private readonly table: RouteTable;
  private readonly routers = new Set<NodeId>();
  /** When each router last answered, and when we last reset its session. */
  private readonly heard = new Map<NodeId, number>();
  private readonly reset = new Map<NodeId, number>();
  private readonly installed = new Set<string>();
  private host?: HostRoutes;
  private health?: LanHealth;
  private healthWhy = "not started";
  private lan = new Map<string, string>();
  private readonly advertised: (Subnet & { bytes: Uint8Array })[];
  private lastQuery = 0;
  private lastAsk = -Infinity;
  private tun = "";
  private readonly now: () => number;

  constructor(private readonly d: RoutesDeps) {
    this.now = d.now ?? (() => Date.now());
    this.table = new RouteTable(this.now);
    const r = d.config.routes;
    const outside = outsideGrant(r.advertise, d.grant);
    if (outside.length)
      throw new RouteError("not-granted", `[routes] advertise: ${outside.map(fmtPrefix).join(", ")} ${outside.length > 1 ? "are" : "is"} not granted by this node's certificate (granted: ${d.grant.filter((g) => g.prefix > 0).map(fmtPrefix).join(", ") || "none"}; the root grants subnets with 'trellis sign/invite --subnets')`);
    if (r.exit && !grantsExit(d.grant)) throw new RouteError("not-granted", "[routes] exit: this node's certificate does not grant the exit right (the root grants it with 'trellis sign/invite --exit')");
    this.advertised = r.advertise.map((p) => ({ ...p, bytes: subnetBytes(p) }));
  }

  private get member(): boolean {
    return this.d.config.routes.accept;
  }

  private get router(): boolean {
    return this.advertised.length > 0 || this.d.config.routes.exit;
  }

  /** Set up the host for what we advertise (after undoing what a crashed run left). */
  start(tun: string): void {
    this.tun = tun;
    const r = this.d.config.routes;
    this.host = new HostRoutes(this.d.config.node.stateDir, tun, this.d.log, this.d.runner);
    this.host.recover();
    if (!this.router) return;
    this.lan = this.host.router(r.advertise, r.snat);
    this.health = new LanHealth(
      () => [...this.lan.values()],
      r.check,
      (ok, why) => {
        this.healthWhy = why;
        this.d.log(ok ? "info" : "warn", `LAN side ${ok ? "healthy" : "down"} (${why}): ${ok ? "advertising" : "withdrawing"} ${r.advertise.map(fmtPrefix).join(", ")}`);
      },
    );
    this.healthWhy = "healthy";
    this.health.start();
    this.d.log("info", `advertising ${r.advertise.map(fmtPrefix).join(", ")} to members that ask${r.check ? `, while ${r.check} answers` : ""}`);
  }

  stop(): void {
    this.health?.stop();
    for (const p of this.installed) this.host?.delRoute([p, "dev", this.tun]);
    this.installed.clear();
    this.host?.stop();
  }

  /** Whether a router named by a relay is news to us (we use routes and do not know it yet). */
  wantsRouter(id: NodeId): boolean {
    return this.member && id !== this.d.self && !this.routers.has(id);
  }

  addRouter(id: NodeId): void {
    if (!this.wantsRouter(id)) return;
    this.routers.add(id);
    this.heard.set(id, this.now());
    this.d.log("info", `router ${this.d.name(id) ?? id} (${id}) found: asking it for routes`);
  }

  /** Member side, every node tick: ask for routers now and then, query the known ones, keep the TUN's routes in step. */
  tick(): void {
    if (!this.member) return;
    const now = this.now();
    if (now - this.lastAsk >= (this.routers.size ? ASK_KNOWN_EVERY_MS : ASK_EVERY_MS)) {
      this.lastAsk = now;
      for (let i = 0; i < ROUTER_INDICES; i++) this.d.ask({ router: i });
    }
    if (now - this.lastQuery >= QUERY_EVERY_MS) {
      this.lastQuery = now;
      for (const id of this.routers) {
        const silent = now - (this.heard.get(id) ?? now), lastReset = this.reset.get(id) ?? 0;
        if (silent > RESET_SILENT_MS && now - lastReset > RESET_SILENT_MS) {
          this.reset.set(id, now);
          this.d.resetSession(id);
        }
        if (this.d.reach(id)) this.d.send(id, this.table.query(id));
      }
    }
    this.table.expire();
    this.sync();
  }

  /** Make the TUN's routes match the accepted prefixes. */
  private sync(): void {
    if (!this.host) return;
    const want = new Set(this.member ? this.table.prefixes().map(fmtPrefix) : []);
    for (const p of want) {
      if (this.installed.has(p)) continue;
      if (this.host.addRoute([p, "dev", this.tun], true)) this.d.log("info", `route ${p} on ${this.tun} (advertised by ${this.table.view().find((v) => v.prefix === p)?.routers.map((r) => r.name ?? r.id).join(", ")})`);
      this.installed.add(p);
    }
    for (const p of this.installed) {
      if (want.has(p)) continue;
      this.host.delRoute([p, "dev", this.tun]);
      this.installed.delete(p);
      this.d.log("info", `route ${p} removed from ${this.tun}: no router advertises it any more`);
    }
  }

  /** A control payload from a peer: a route query (answered) or an advert (kept). False when not ours. */
  control(from: NodeId, payload: Uint8Array): boolean {
    if (payload[0] === CONTROL_ROUTE_QUERY) {
      const seq = decodeQuerySeq(payload);
      if (seq !== undefined && this.router) this.d.send(from, encodeAdvert({ seq, exit: false, prefixes: this.healthyPrefixes() }));
      return true;
    }
    if (payload[0] !== CONTROL_ROUTE_ADVERT) return false;
    if (!this.routers.has(from)) return true;
    const m = this.d.membership(from);
    if (!m) return (this.d.log("debug", `routes from ${from} ignored: no certificate (allow-list entries cannot grant routes)`), true);
    let a;
    try {
      a = decodeAdvert(payload);
    } catch (e) {
      return (this.d.log("debug", `routes from ${from}: ${(e as Error).message}`), true);
    }
    this.heard.set(from, this.now());
    const refused = this.table.advert(from, m.name, a, m.subnets);
    if (refused.length) this.d.log("warn", `router ${m.name} (${from}) advertises ${refused.map(fmtPrefix).join(", ")} beyond its certificate's grant: ignored`);
    this.sync();
    return true;
  }

  private healthyPrefixes(): Subnet[] {
    if (this.health && !this.health.healthy) return [];
    return this.advertised.filter((p) => this.lan.has(fmtPrefix(p))).map(({ family, address, prefix }) => ({ family, address, prefix }));
  }

  /** The router for a packet to an address outside the overlay (inside path), or undefined. */
  route(p: Uint8Array, off: number, v: 4 | 6): NodeId | undefined {
    if (!this.member || (v === 6 && inOverlayPrefix6(p, off))) return undefined;
    return this.table.route(p, off, v);
  }

  /** Whether we, as a router, forward a member's packet to the destination at `p[off]` (outside path). */
  forwards(p: Uint8Array, off: number, v: 4 | 6): boolean {
    if (!this.router || (v === 6 && inOverlayPrefix6(p, off))) return false;
    return this.advertised.some((s) => s.family === v && inPrefix(p, off, s.bytes, s.prefix));
  }

  status(): RoutesStatus {
    const r = this.d.config.routes;
    return {
      advertise: r.advertise.map((p) => ({ prefix: fmtPrefix(p), device: this.lan.get(fmtPrefix(p)) ?? null })),
      healthy: this.router ? (this.health?.healthy ?? false) : false,
      health: this.router ? this.healthWhy : "not a router",
      snat: r.snat,
      exit: r.exit,
      accept: r.accept,
      routes: this.table.view(),
    };
  }
}
