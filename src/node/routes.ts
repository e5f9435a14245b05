// The node's [routes]: a router answers route queries with what it advertises and is healthy; a member finds routers, keeps their adverts and routes by them.
//
// Router side: `[routes] advertise` must lie inside the node's root-signed grant (else a config error
// naming the key); at start the host is set up (hostnet.ts: forwarding, SNAT table) and the LAN side is
// watched (LanHealth); a route query from a peer is answered with the prefixes that are healthy now.
// Member side (`[routes] accept = true`): routers are found by asking our relays for members whose
// certificates grant subnets (members.ts, QUERY_ROUTER), queried every QUERY_EVERY_MS through the
// end-to-end session; their adverts (bounded by their certificates, route/subnets.ts) become routes
// on our TUN and nothing else, and the inside path sends each packet to the best router.
// Exit mode (`[routes] exit_node`): 0.0.0.0/1 and 128.0.0.0/1 (and ::/1, 8000::/1) on our TUN, each
// underlay address our links and seeds use kept on the old default route (seeds named by hostname are
// resolved, and again now and then); with `exit_dns` the resolver points at the exit, which forwards
// names that are not ours to its own resolver (trust/dns.ts). IPv6 goes to an exit that carries it,
// else it is refused at once (an unreachable route: programs fall back to IPv4, nothing leaks).
import { lookup as dnsLookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import type { NodeId } from "../identity/identity.ts";
import { inOverlayPrefix6, ipv6Of, parseIpv4, parseIpv6 } from "../identity/address.ts";
import type { DnsForward } from "../trust/dns.ts";
import type { Log } from "../log.ts";
import type { Membership } from "../trust/certificate.ts";
import { subnetBytes, subnetWithin, type Subnet } from "../trust/subnet.ts";
import { inPrefix } from "../datapath/ip.ts";
import type { MemberQuery } from "./members.ts";
import { HostRoutes, LanHealth, type OwnOverlay, type Runner } from "./hostnet.ts";
import {
  CONTROL_ROUTE_ADVERT, CONTROL_ROUTE_QUERY, decodeAdvert, decodeQuerySeq, encodeAdvert, fmtPrefix, grantsExit, outsideGrant, QUERY_EVERY_MS, RouteError, RouteTable, type ExitView, type RouteView,
} from "../route/subnets.ts";

/**
 * How often a member asks its relays for routers: at once again while asking finds new ones; while none
 * is known, 1 s apart at first and backing off to ASK_NONE_MAX_MS (a relay answers each ask by walking
 * its members: a thousand members that accept routes in a network without routers asked 8 questions a
 * second each); once some are known, now and then.
 */
const ASK_EVERY_MS = 1000;
const ASK_NONE_MAX_MS = 8000;
const ASK_KNOWN_EVERY_MS = 10_000;
/** Routers are asked for by index: one more than we know (the relay names the index-th), at most this many. */
const ROUTER_INDICES = 8;
/** A router silent this long gets a fresh handshake (a restarted router cannot open the old session's packets). */
const RESET_SILENT_MS = 3000;
/** Seeds named by hostname are looked up again this often in exit mode (their addresses keep the underlay). */
const SEED_LOOKUP_EVERY_MS = 60_000;
/** The resolver file exit_dns rewrites. */
export const RESOLV_CONF = "/etc/resolv.conf";
const V6_HALVES = ["::/1", "8000::/1"];

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
  /** The underlay addresses our links and seeds use now (IP literals): kept off the TUN in exit mode. */
  underlay(): string[];
  /** IP bytes received from `id` so far (a router that sends us its LAN's replies is alive). */
  rxBytes(id: NodeId): number;
  /** The membership `id` proved (its certificate), undefined for allow-listed nodes and strangers. */
  membership(id: NodeId): Membership | undefined;
  /**
   * What our certificate in network `networkId` grants (subnets; the exit right as default routes): a
   * member of that network may use what that root granted, and nothing another network's root granted
   * us (that root speaks for its own members only).
   */
  grantIn(networkId: string): Subnet[];
  /** Whether `id` is in [network] allow (this node's operator trusts it: it may use the exit too). */
  allowListed(id: NodeId): boolean;
  /** The peer whose overlay address (IPv6 or IPv4, as text) `addr` is; this node's own addresses give `self`. */
  peerAt(addr: string): NodeId | undefined;
  name(id: NodeId): string | null;
  /** Whether the IPv4 address at `p[off]` is in one of our networks' overlay prefixes. */
  isOverlay4(p: Uint8Array, off: number): boolean;
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
  /** Exit node mode: what was asked ("NAME" or "auto"), the exit in use, and whether host routing is on. */
  exit_node: { want: string; via: NodeId | null; name: string | null; active: boolean; ipv6: boolean; dns: string | null; candidates: { id: NodeId; name: string | null; rtt_ms: number | null; ipv6: boolean; dns: boolean }[] } | null;
}

export class Routes {
  private readonly table: RouteTable;
  private readonly routers = new Set<NodeId>();
  /** When each router last answered, and when we last reset its session. */
  private readonly heard = new Map<NodeId, number>();
  private readonly reset = new Map<NodeId, number>();
  private readonly rx = new Map<NodeId, number>();
  private readonly installed = new Set<string>();
  private host?: HostRoutes;
  private health?: LanHealth;
  private healthWhy = "not started";
  private lan = new Map<string, string>();
  private readonly advertised: (Subnet & { bytes: Uint8Array })[];
  private lastQuery = 0;
  private lastAsk = -Infinity;
  /** The wait before the next ask for routers, and how many routers we knew when we last asked. */
  private askGap = ASK_EVERY_MS / 2; // doubled at the first ask
  private askedKnowing = 0;
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
    this.exitWant = r.exitNode;
  }

  private get member(): boolean {
    return this.d.config.routes.accept || this.exitWant !== null;
  }

  /** `[routes] exit_node` (or `trellis up --exit-node`): a member's name, "auto", or null. Changes on SIGHUP. */
  private exitWant: string | null = null;
  /** The exit in use, and the host routing of exit mode (kept while on, even when no exit is healthy: nothing leaks). */
  private exitVia: NodeId | null = null;
  private exitOn: { gw?: string; dev: string; kept: Set<string>; up6?: { gw?: string; dev: string }; v6: string[][] } | null = null;
  /** The exit in use as the table last listed it (IPv6, DNS), and the resolver we pointed at (exit_dns). */
  private exitPick: ExitView | null = null;
  private resolver: string | null = null;
  /** What exit_dns last tried to point at (undefined: nothing yet in this exit mode). */
  private resolverTried: string | null | undefined = undefined;
  /** Seeds named by hostname, resolved (exit mode keeps these addresses on the underlay too). */
  private readonly seedAddrs = new Set<string>();
  private lastSeedLookup = -Infinity;
  private dnsOffered = false;

  private get router(): boolean {
    return this.advertised.length > 0 || this.d.config.routes.exit;
  }

  /** Set up the host for what we advertise (after undoing what a crashed run left); an exit guards `own` (hostnet.ts). */
  start(tun: string, own?: OwnOverlay): void {
    this.tun = tun;
    const r = this.d.config.routes;
    this.host = new HostRoutes(this.d.config.node.stateDir, tun, this.d.log, this.d.runner);
    this.host.recover();
    // Opened now, while we have root: exit mode rewrites it after the privilege drop.
    if (r.exitDns) this.host.openResolv(RESOLV_CONF);
    if (this.exitWant !== null) void this.lookupSeeds();
    if (!this.router) return;
    this.uplinkDev = r.exit ? this.host.uplink()?.dev : undefined;
    this.uplink6Dev = r.exit ? this.host.uplink(6)?.dev : undefined;
    if (r.exit && !this.uplinkDev) this.d.log("warn", "[routes] exit: this host has no default route: nothing to offer until it has one");
    if (r.exit && this.uplinkDev && !this.uplink6Dev) this.d.log("info", "[routes] exit: no IPv6 default route: members get IPv4 only through this exit");
    this.lan = this.host.router(r.advertise, r.snat, this.uplinkDev, this.uplink6Dev, r.exit ? own : undefined);
    this.health = new LanHealth(
      () => [...this.lan.values(), ...(this.uplinkDev ? [this.uplinkDev] : []), ...(this.uplink6Dev && this.uplink6Dev !== this.uplinkDev ? [this.uplink6Dev] : [])],
      r.check,
      (ok, why) => {
        this.healthWhy = why;
        this.d.log(ok ? "info" : "warn", `LAN side ${ok ? "healthy" : "down"} (${why}): ${ok ? "advertising" : "withdrawing"} ${r.advertise.map(fmtPrefix).join(", ")}`);
      },
    );
    this.healthWhy = "healthy";
    this.health.start();
    this.d.log("info", `advertising ${[...r.advertise.map(fmtPrefix), ...(r.exit ? [`an exit through ${this.uplinkDev ?? "(no uplink)"}`] : [])].join(", ")} to members that ask${r.check ? `, while ${r.check} answers` : ""}`);
  }
  private uplinkDev?: string;
  private uplink6Dev?: string;

  /**
   * Whether `id` may use this node as an exit: this node itself, an allow-listed node, or a member of a
   * network whose root granted this node the exit right. The network's policy has its say on each
   * packet as well (the firewall in the data path), DNS queries to us included.
   */
  mayUseExit(id: NodeId): boolean {
    if (id === this.d.self || this.d.allowListed(id)) return true;
    const m = this.d.membership(id);
    return m !== undefined && grantsExit(this.d.grantIn(m.networkId));
  }

  /** Whether `id` may reach our advertised prefix `s`: as mayUseExit, with a network whose root granted us `s`. */
  private mayReach(id: NodeId, s: Subnet): boolean {
    if (id === this.d.self || this.d.allowListed(id)) return true;
    const m = this.d.membership(id);
    return m !== undefined && this.d.grantIn(m.networkId).some((g) => g.prefix > 0 && subnetWithin(s, g));
  }

  /**
   * An exit node's DNS: names that are not ours (`ours`: NAME.NETWORK), asked by the overlay address
   * of a node that may use this exit (mayUseExit), go to this host's own resolver (the first nameserver
   * of its resolv.conf that is not in the overlay). Undefined when this node is not an exit.
   */
  dnsForward(ours: (name: string) => boolean): DnsForward | undefined {
    if (!this.d.config.routes.exit) return undefined;
    this.dnsOffered = true;
    let cached: { at: number; ns?: string } = { at: -Infinity };
    const overlay = (addr: string) => {
      const a = addr.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");
      const v4 = parseIpv4(a), v6 = v4 ? null : parseIpv6(a);
      return v4 ? this.d.isOverlay4(v4, 0) : v6 !== null && inOverlayPrefix6(v6);
    };
    return {
      ours,
      // Only an overlay address whose holder may use this exit: the answer then goes back through its session.
      from: (addr) => {
        if (!overlay(addr)) return false;
        const id = this.d.peerAt(addr.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, ""));
        return id !== undefined && this.mayUseExit(id);
      },
      upstream: () => {
        if (this.now() - cached.at > 5000) {
          let text = "";
          try {
            text = readFileSync(RESOLV_CONF, "utf8");
          } catch {}
          const ns = [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1].replace(/%.*$/, "")).find((a) => !overlay(a));
          cached = { at: this.now(), ns };
        }
        return cached.ns;
      },
    };
  }

  /** Seeds named by hostname: their addresses now (from /etc/hosts or DNS), kept on the underlay in exit mode. */
  private async lookupSeeds(): Promise<void> {
    this.lastSeedLookup = this.now();
    for (const s of this.d.config.network.seeds) {
      let host: string;
      try {
        host = new URL(s).hostname.replace(/^\[|\]$/g, "");
      } catch {
        continue;
      }
      if (parseIpv4(host) || parseIpv6(host)) continue;
      try {
        for (const a of await dnsLookup(host, { all: true })) {
          if (this.seedAddrs.has(a.address)) continue;
          this.seedAddrs.add(a.address);
          this.d.log("info", `seed ${host} is ${a.address}: kept on the underlay in exit mode`);
        }
      } catch (e) {
        this.d.log("warn", `seed ${host}: cannot look it up (${(e as Error).message}); its tether may not survive exit mode`);
      }
    }
  }

  stop(): void {
    this.health?.stop();
    this.exitOff("stopping");
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
    const known = this.routers.size;
    if (known > this.askedKnowing) this.askGap = ASK_EVERY_MS; // the last ask found some: ask for the next ones soon
    else if (known > 0) this.askGap = ASK_KNOWN_EVERY_MS;
    if (now - this.lastAsk >= this.askGap) {
      this.lastAsk = now;
      if (known === 0 && this.askedKnowing === 0) this.askGap = Math.min(ASK_NONE_MAX_MS, this.askGap * 2);
      this.askedKnowing = known;
      for (let i = 0; i < Math.min(ROUTER_INDICES, known + 1); i++) this.d.ask({ router: i });
    }
    if (now - this.lastQuery >= QUERY_EVERY_MS) {
      this.lastQuery = now;
      for (const id of this.routers) {
        const rx = this.d.rxBytes(id);
        if (rx !== (this.rx.get(id) ?? 0)) this.table.touch(id);
        this.rx.set(id, rx);
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
    this.exitTick();
  }

  /** Exit mode: pick the exit (by name, or the best healthy one for "auto"), turn host routing on, keep our links' addresses off the TUN. */
  private exitTick(): void {
    if (this.exitWant === null) return;
    if (this.now() - this.lastSeedLookup >= SEED_LOOKUP_EVERY_MS) void this.lookupSeeds();
    const exits = this.table.exits();
    const pick = this.exitWant === "auto" ? exits[0] : exits.find((e) => e.name === this.exitWant);
    if ((pick?.id ?? null) !== this.exitVia) {
      const before = this.exitVia;
      this.exitVia = pick?.id ?? null;
      if (pick) this.d.log("info", `exit node: ${pick.name ?? pick.id} (${pick.id})${before ? `, was ${this.d.name(before) ?? before}` : ""}${pick.exit6 ? "" : " (IPv4 only: it has no IPv6 uplink)"}`);
      else this.d.log("warn", `exit node: ${this.exitWant === "auto" ? "no healthy exit" : `${this.exitWant} is not a healthy exit`}; traffic for the internet waits (nothing leaks to the underlay)`);
    }
    if (pick) this.exitPick = pick;
    if (this.exitVia && !this.exitOn) this.exitOnHost();
    if (this.exitOn) {
      this.keepUnderlay();
      if (pick) {
        this.exitV6(pick.exit6);
        this.exitResolver(pick);
      }
    }
  }

  /** IPv6 in exit mode: ::/1 and 8000::/1 on the TUN when the exit carries IPv6, else unreachable (refused at once, never leaked). */
  private exitV6(on: boolean): void {
    const x = this.exitOn!;
    const want = V6_HALVES.map((h) => (on ? [h, "dev", this.tun] : ["unreachable", h]));
    if (want.map((a) => a.join(" ")).join() === x.v6.map((a) => a.join(" ")).join()) return;
    for (const a of x.v6) this.host!.delRoute(a);
    for (const a of want) this.host!.addRoute(a, on);
    x.v6 = want;
    this.d.log("info", on ? `exit mode: ::/1 and 8000::/1 on ${this.tun} (IPv6 through the exit)` : "exit mode: ::/1 and 8000::/1 unreachable (the exit carries no IPv6: programs fall back to IPv4, nothing leaks)");
  }

  /** exit_dns: the resolver points at the exit in use when it answers DNS, else back as it was. */
  private exitResolver(pick: ExitView): void {
    if (!this.d.config.routes.exitDns || !this.host) return;
    const ipv4 = this.d.membership(pick.id)?.ipv4;
    const want = pick.dns ? (ipv4 ?? ipv6Of(pick.id)) : null;
    if (want === this.resolverTried) return;
    this.resolverTried = want;
    this.resolver = null;
    if (want) {
      // Status says the resolver only when the file says it (a symlinked or unwritable one was logged at start).
      if (this.host.setResolver(want, `exit_dns: the resolver of exit node ${pick.name ?? pick.id}`)) this.resolver = want;
    } else {
      this.host.restoreResolver();
      this.d.log("warn", `exit_dns: exit node ${pick.name ?? pick.id} does not answer DNS: the resolver is left as it was (its queries still go through the exit)`);
    }
  }

  private exitOnHost(): void {
    const up = this.host?.uplink();
    if (!this.host || !up) return this.d.log("warn", "exit node: this host has no default route to keep our own links on");
    const up6 = this.host.uplink(6);
    this.exitOn = { gw: up.via, dev: up.dev, kept: new Set(), up6: up6 && { gw: up6.via, dev: up6.dev }, v6: [] };
    this.keepUnderlay();
    for (const half of ["0.0.0.0/1", "128.0.0.0/1"]) this.host.addRoute([half, "dev", this.tun], true);
    this.d.log("info", `exit mode on: routes 0.0.0.0/1 and 128.0.0.0/1 on ${this.tun} (the default route via ${up.via ?? up.dev} stays, for our own links: ${[...this.exitOn.kept].join(", ") || "none yet"})`);
  }

  /** The `ip route` arguments that keep underlay address `a` on the old default route (/32 or /128), or undefined (no such route for its family). */
  private keepArgs(a: string): string[] | undefined {
    const on = this.exitOn!;
    const v6 = a.includes(":");
    const via = v6 ? on.up6 : { gw: on.gw, dev: on.dev };
    return via && [`${a}/${v6 ? 128 : 32}`, ...(via.gw ? ["via", via.gw] : []), "dev", via.dev];
  }

  /** Each underlay address our links and seeds use keeps its way out through the old default route (a /32 or /128 each). */
  private keepUnderlay(): void {
    const on = this.exitOn!;
    for (const a of new Set([...this.d.underlay(), ...this.seedAddrs])) {
      if (on.kept.has(a)) continue;
      on.kept.add(a);
      const args = this.keepArgs(a);
      if (!args) continue; // an IPv6 address with no IPv6 default route: exit mode does not route it either way
      this.host!.addRoute(args, false);
      this.d.log("info", `exit mode: ${a} (one of our links${this.seedAddrs.has(a) ? ": a seed" : ""}) stays on the underlay via ${args.slice(1).join(" ")}`);
    }
  }

  private exitOff(why: string): void {
    if (!this.exitOn || !this.host) return;
    for (const half of ["0.0.0.0/1", "128.0.0.0/1"]) this.host.delRoute([half, "dev", this.tun]);
    for (const a of this.exitOn.v6) this.host.delRoute(a);
    for (const a of this.exitOn.kept) {
      const args = this.keepArgs(a);
      if (args) this.host.delRoute(args);
    }
    this.host.restoreResolver();
    this.resolver = null;
    this.resolverTried = undefined;
    this.d.log("info", `exit mode off (${why}): the routes it added are removed`);
    this.exitOn = null;
    this.exitVia = null;
    this.exitPick = null;
  }

  /** SIGHUP: a new `[routes] exit_node` (null turns exit mode off and undoes its routes). */
  setExitNode(want: string | null): void {
    if (want === this.exitWant) return;
    this.d.log("info", `exit node: ${want === null ? "off" : `now ${JSON.stringify(want)}`} (reload)`);
    if (want === null || this.exitOn) this.exitOff("exit_node changed");
    this.exitWant = want;
  }

  /** Make the TUN's routes match the accepted prefixes. */
  private sync(): void {
    if (!this.host) return;
    const want = new Set(this.d.config.routes.accept ? this.table.prefixes().map(fmtPrefix) : []);
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
      const exit = this.d.config.routes.exit && this.uplinkDev !== undefined && (this.health?.healthy ?? false);
      // The exit is offered only to those who may use it (another network's member would black-hole its traffic here).
      const offer = exit && this.mayUseExit(from);
      if (seq !== undefined && this.router) this.d.send(from, encodeAdvert({ seq, exit: offer, exit6: offer && this.uplink6Dev !== undefined, dns: offer && this.dnsOffered, prefixes: this.healthyPrefixes().filter((p) => this.mayReach(from, p)) }));
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
    return (this.d.config.routes.accept ? this.table.route(p, off, v) : undefined) ?? (this.exitOn && this.exitVia && (v === 4 || this.exitPick?.exit6) ? this.exitVia : undefined);
  }

  /** Whether a packet from `from` may carry the source at `p[off]` because `from` is our exit (the internet answers through it). */
  fromExit(from: NodeId, p: Uint8Array, off: number, v: 4 | 6): boolean {
    return this.exitOn !== null && from === this.exitVia && (v === 4 ? !this.d.isOverlay4(p, off) : !inOverlayPrefix6(p, off));
  }

  /** Whether we, as a router, forward `from`'s packet to the destination at `p[off]` (outside path). */
  forwards(from: NodeId, p: Uint8Array, off: number, v: 4 | 6): boolean {
    if (!this.router || (v === 6 && inOverlayPrefix6(p, off))) return false;
    const lan = this.advertised.find((s) => s.family === v && inPrefix(p, off, s.bytes, s.prefix));
    if (lan && this.mayReach(from, lan)) return true;
    if (lan) return this.uplinkDev !== undefined && this.mayUseExit(from); // not granted to its network: only as exit traffic
    // Anything else leaves by the uplink: only for those who may use this exit.
    if (v === 4 && this.uplinkDev && !this.d.isOverlay4(p, off)) return this.mayUseExit(from);
    if (v === 6 && this.uplink6Dev) return this.mayUseExit(from); // not in the overlay (above)
    return false;
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
      exit_node: this.exitWant === null ? null : {
        want: this.exitWant, via: this.exitVia, name: this.exitVia ? this.d.name(this.exitVia) : null, active: this.exitOn !== null, ipv6: this.exitOn !== null && (this.exitPick?.exit6 ?? false), dns: this.resolver,
        candidates: this.table.exits().map((e) => ({ id: e.id, name: e.name, rtt_ms: e.rttMs, ipv6: e.exit6, dns: e.dns })),
      },
    };
  }
}
