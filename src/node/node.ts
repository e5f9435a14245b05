// The node's life: down → up → closed, reload and stop; and the wiring of its parts. No packet enters here.
//
//   node ──wires──▶ datapath (inside.ts: TUN → route → hold → seal; outside.ts: open → key is the route → TUN)
//                      └──ports──▶ session/ (handshakes, seal/open) · route/ (paths, relays) · tun/
//        ──wires──▶ tether/ (links, signalled through seeds) ──▶ route/ (every frame a link carries)
//   admission.ts  who may talk to us (allow-list, certificates, revocations, policy: the firewall port)
//   lookups.ts + members.ts  which member holds an IPv4 address or name (asked of relays, answered)
//   status.ts     the views the API and CLI show      control.ts  pings, revocations and policy in sessions
//   overlay.ts    control messages in sessions (trust records spread, pings) and signals through relays
//   peering.ts    links and sessions with peers: started on a link, claims checked, RTT pings, retries
// Signalling (the links) tells the node who a link's peer is (its verified public identity); the session
// handshake tells it what the peer claims (name, IPv4), checked against the allow-list or its certificate.
import { equal16, inOverlayPrefix6, ipv6BytesOf, ipv6Of, OVERLAY_PREFIX6_LEN, parseIpv4, parseIpv6 } from "../identity/address.ts";
import { encodePublicIdentity, isNodeId, type Identity, type NodeId } from "../identity/identity.ts";
import type { Config } from "../config/schema.ts";
import { Sessions } from "../session/sessions.ts";
import { gcmLib, gcmWhyNot } from "../session/gcm.ts";
import { LinkManager, type LinkFactory, type Links } from "../tether/links.ts";
import { startSeed, type Seed } from "../seed/server.ts";
import { seedScope } from "../seed/scope.ts";
import type { TunDevice } from "../tun/device.ts";
import { openTun } from "../tun/linux.ts";
import { Inside, type InsidePorts } from "../datapath/inside.ts";
import { Outside, type OutsidePorts } from "../datapath/outside.ts";
import { TunSlot } from "../datapath/ports.ts";
import { Hold } from "../datapath/hold.ts";
import { inPrefix, ipv4KeyOf } from "../datapath/ip.ts";
import { decodeClaims, PeerTable, type Peer } from "../datapath/peers.ts";
import { Prober } from "./control.ts";
import { CheckBudget } from "../session/ratelimit.ts";

/** Signature checks of records per second: per origin (discovery; the revoked node or network of a revocation or policy) on a link, per link, in all. */
const RECORD_CHECKS = { perSource: 2, perLink: 20, overall: 40 };
import { Admission } from "./admission.ts";
import { Overlay } from "./overlay.ts";
import { Peering } from "./peering.ts";
import { MemberLookups } from "./lookups.ts";
import { Routes } from "./routes.ts";
import { encodeQuery } from "./members.ts";
import { nodeStatus, pathTo, pathViews, relayViews, type NodeStatus, type PathView, type StatusSource } from "./status.ts";
import { Router, type LinkReport } from "../route/router.ts";
import { identityRecordCrypto } from "../route/record.ts";
import { DecisionLog, RecentPaths } from "../route/decisions.ts";
import type { RewardWeights } from "../route/policy.ts";
import { startDns } from "../trust/dns.ts";
import { logger, type Log } from "../log.ts";
import { taskNow } from "../clock.ts";

export type { NodeStatus, PeerStatus } from "./status.ts";

/** `[tun] mtu = "auto"`: Ethernet's 1500 whatever the underlay; a path that takes less says so (src/datapath/toobig.ts). */
export const AUTO_MTU = 1500;
const TICK_MS = 100;

export type NodeState = "down" | "up" | "closed";

/** Parts given from outside: a test passes a memory TUN and in-memory links (src/tether/memory.ts). */
export interface NodeParts {
  openTun?: typeof openTun;
  /** The links to adjacent nodes (default: the LinkManager, WebRTC signalled through the seeds). */
  links?: LinkFactory;
}

export class Node {
  // State, owned by the node's event loop. The parts below are made here and live as long as the node.
  state: NodeState = "down";
  readonly peers = new PeerTable();
  private readonly admission: Admission;
  private readonly sessions: Sessions;
  private readonly links: Links;
  private readonly router: Router;
  private readonly prober: Prober;
  /** Control messages in sessions and signals through relays. */
  private readonly overlay: Overlay;
  /** Signature checks of records (discovery, revocations, policies), budgeted per origin, per link and in all. */
  private readonly checks = new CheckBudget(RECORD_CHECKS, () => performance.now());
  private readonly inside: Inside;
  private readonly outside: Outside;
  /** Every packet waiting for something pending: keys, a path, a handshake, an address's owner. */
  private readonly hold = new Hold();
  /** Links and sessions with peers: started, checked, pinged (./peering.ts). */
  private readonly peering: Peering;
  private tun?: TunDevice;
  /** Where the data path writes: the TUN once start() opened it. */
  private readonly tunSlot = new TunSlot();
  private seed?: Seed;
  private dns: { stop(): void }[] = [];
  private ticker?: ReturnType<typeof setInterval>;
  private readonly startedAt = Date.now();
  private decisions?: DecisionLog;
  /** The last path decisions and path changes, for the page. */
  readonly recent = new RecentPaths();
  /** Which member holds an IPv4 address or name: asked of our relays, answered for neighbours. */
  private readonly lookups: MemberLookups;
  /** Subnet routes: what we advertise, and the routers we send to (./routes.ts). */
  private readonly routes: Routes;
  private readonly log: Log = logger("node");
  readonly mtu: number;

  constructor(readonly config: Config, readonly identity: Identity, private readonly parts: NodeParts = {}) {
    this.admission = new Admission(config, identity.public.id);
    for (const id of this.admission.allow) if (id !== identity.public.id) this.peers.ensure(id);
    // Pinned addresses route from the start, before any handshake.
    for (const [id, a] of Object.entries(config.network.allowIpv4 ?? {}) as [NodeId, string][]) if (this.admission.allow.has(id)) this.peers.applyClaims(id, { ipv4: a });
    this.mtu = config.tun.mtu === "auto" ? AUTO_MTU : config.tun.mtu;
    // The data path first: its session and route ports are plugged in below, once those parts exist
    // (they hand packets to the data path too). Every hand-off on the packet path is a bound method or
    // a port object, so no packet runs code in this file.
    const ports: InsidePorts & OutsidePorts = {
      session: undefined as unknown as Sessions,
      route: undefined as unknown as Router,
      tun: this.tunSlot,
      policy: this.admission,
      control: (from, payload) => this.overlay.control(from, payload),
      signal: (from, envelope, link) => this.overlay.signal(from, envelope, link),
      spoofed: (from) => this.log("debug", `dropped a packet from ${from}: inner source is not its address`),
    };
    this.inside = new Inside(this.peers, ports, logger("datapath"), this.hold);
    const forwards = (from: NodeId, packet: Uint8Array, off: number, v: 4 | 6) => this.routes.forwards(from, packet, off, v);
    const fromExit = (from: NodeId, packet: Uint8Array, off: number, v: 4 | 6) => this.routes.fromExit(from, packet, off, v);
    this.outside = new Outside(this.peers, { ipv6: ipv6BytesOf(identity.public.id), ipv4Keys: this.admission.ipv4s.map((a) => ipv4KeyOf(parseIpv4(a.address)!)), forwards, fromExit }, ports);
    const linkLog = logger("link");
    this.links = (parts.links ?? ((o) => new LinkManager(o)))({
      identity,
      seeds: config.network.seeds,
      accept: (remote, certs) => this.admission.admitLink(remote, certs, this.links),
      screen: (from, certs) => this.admission.screen(from, certs),
      proofs: () => this.admission.networks.proofs(),
      log: linkLog,
      overlay: (to, envelope) => this.router.sendSignal(to, new TextEncoder().encode(JSON.stringify(envelope))),
      overlayReaches: (to) => this.router.hasRelayPath(to),
      avoidAddress: (host) => this.isOverlayAddress(host),
      moreSeeds: () => this.router.relayHints().filter((h) => !config.network.seeds.includes(h)),
      ca: config.network.ca,
    });
    const routeLog = logger("route");
    this.router = new Router({
      self: identity.public.id,
      relay: { enabled: config.relay.enabled, bandwidthBps: config.relay.bandwidthBps, maxPeers: config.relay.maxPeers },
      links: this.links,
      now: taskNow,
      crypto: identityRecordCrypto(identity),
      idleTimeoutMs: config.node.idleTimeoutMs,
      // Our seed's URL, when it listens on a specific address (0.0.0.0 says nothing to others).
      hints: () => (this.seed && !["0.0.0.0", "::"].includes(config.relay.listen.host) ? [`${config.relay.tlsCert ? "https" : "http"}://${config.relay.listen.host.includes(":") ? `[${config.relay.listen.host}]` : config.relay.listen.host}:${this.seed.port}`] : []),
      deliver: this.outside.fromRoute.bind(this.outside),
      deliverBatch: this.outside.fromRouteBatch.bind(this.outside),
      // Delivery reports travel sealed in the session; unsealed ones (anyone linked could forge them) are dropped.
      sealed: (dst, payload) => {
        if (!this.sessions.isEstablished(dst)) return false;
        this.sessions.send(dst, payload);
        return true;
      },
      onRecord: this.inside.record.bind(this.inside),
      checks: this.checks,
      members: this.admission,
      certOf: (id, to, ourSeed) => this.admission.certToPass(id, to) ?? (ourSeed ? this.admission.memberCerts.get(id) : undefined),
      onPathUp: this.inside.pathUp.bind(this.inside),
      weights: { ...config.paths.weights },
      memberLookup: (from, q) => this.lookups.answer(from, q),
      onMember: (from, a) => this.lookups.onAnswer(from, a),
      onDecision: (d) => {
        this.decisions?.write(d);
        this.recent.decision(d);
      },
      onPathChange: (dst, from, to) => this.recent.change(dst, from, to),
      log: routeLog,
    });
    if (config.paths.decisionLog) this.decisions = new DecisionLog(config.paths.decisionLog, config.paths.decisionLogMaxBytes, routeLog);
    const sessionLog = logger("session");
    this.sessions = new Sessions({
      identity,
      hold: this.hold,
      claims: this.admission.claims.full,
      responseClaims: (_remote, theirs) => this.admission.responseClaims(theirs),
      accept: (remote, claims) => this.admission.admit(remote, decodeCerts(claims)),
      transmit: this.router.send.bind(this.router),
      transmitBatch: this.router.sendBatch.bind(this.router),
      deliver: this.outside.fromPeer.bind(this.outside),
      onEstablished: (peer, remote, claims) => this.peering.established(peer, remote, claims),
      onClosed: (peer, reason) => sessionLog("info", `session with ${peer} closed: ${reason}`),
      // Cookie replies only to senders we know: a reply to a sender a relay merely claims would start a lookup and a link attempt.
      knows: (id) => this.peers.get(id)?.pub !== undefined || this.links.link(id) !== undefined,
      log: sessionLog,
    });
    ports.session = this.sessions;
    ports.route = this.router;
    this.lookups = new MemberLookups({ self: identity.public.id, relaying: config.relay.enabled, admission: this.admission, peers: this.peers, hold: this.hold, router: () => this.router, routes: () => this.routes,
      send: this.inside.send.bind(this.inside), log: logger("node") });
    ports.members = this.lookups;
    this.routes = new Routes({
      config,
      self: identity.public.id,
      grant: this.admission.networks.members.flatMap((m) => m.membership.subnets),
      send: (to, payload) => this.sessions.send(to, payload),
      reach: (to) => this.reachRouter(to),
      resetSession: (to) => this.sessions.isEstablished(to) && this.sessions.close(to, "router silent: handshaking afresh"),
      ask: (query) => this.router.lookupMember(encodeQuery(query)),
      membership: (id) => (this.admission.allow.has(id) ? undefined : this.admission.memberships.get(id)),
      grantIn: (networkId) => this.admission.networks.member(networkId)?.membership.subnets ?? [],
      allowListed: (id) => this.admission.allow.has(id),
      peerAt: (addr) => this.peerAt(addr),
      name: (id) => (this.peers.get(id) ? (this.peers.get(id)!.name ?? this.admission.memberships.get(id)?.name ?? null) : null),
      underlay: () => this.underlayAddresses(),
      rxBytes: (id) => this.peers.get(id)?.rxBytes ?? 0,
      isOverlay4: (p, off) => this.admission.ipv4s.some((a) => inPrefix(p, off, parseIpv4(a.address)!, a.prefix)),
      log: logger("routes"),
    });
    ports.subnets = this.routes;
    this.prober = new Prober((to, payload) => this.sessions.send(to, payload), undefined, (from) => this.router.traceFrom(from));
    this.overlay = new Overlay({ admission: this.admission, peers: this.peers, sessions: this.sessions, links: this.links, router: this.router, routes: this.routes, prober: this.prober, checks: this.checks, log: this.log });
    this.peering = new Peering({ self: identity.public.id, relaying: config.relay.enabled, admission: this.admission, peers: this.peers, sessions: this.sessions, links: this.links, router: this.router, inside: this.inside, prober: this.prober, overlay: this.overlay, log: this.log });
  }

  get id(): NodeId {
    return this.identity.public.id;
  }

  /** Bring the node up: TUN, seed (if this node is one), signalling and links. */
  async start(): Promise<void> {
    if (this.state !== "down") throw new Error(`node: start() in state ${this.state}`);
    const c = this.config;
    // Heard before anything can open a link: our seed takes registrations (a member's tether, its offers)
    // from the moment it listens, and a link announced before these are set would reach no router (the
    // member's link left unanswered, closed every 10 s and reopened, never heard).
    this.links.onIdentity((remote) => this.peering.learn(remote));
    this.links.onLink((link, remote) => this.peering.linked(link, remote));
    this.links.onSeedRelay((relay) => this.router.addRelay(relay));
    this.links.onSuspect?.((peer) => this.router.suspect(peer));
    if (c.relay.enabled && c.relay.seed) {
      const seedLog = logger("seed");
      const scope = seedScope({ self: this.id, networks: () => this.admission.networks, allow: () => this.admission.allow, ids: c.relay.networks, log: seedLog });
      this.seed = await startSeed({
        listen: `${c.relay.listen.host}:${c.relay.listen.port}`, log: seedLog, relay: this.id, relayPub: encodePublicIdentity(this.identity.public),
        admit: scope.admit, invites: scope.invites, tether: this.links.tetherHost?.(),
        // Members link to the relay the seed announces (this node): its signalling is served in-process.
        local: { id: this.id, receive: (m) => this.links.handleSignal(m) },
        tls: c.relay.tlsCert && c.relay.tlsKey ? { certFile: c.relay.tlsCert, keyFile: c.relay.tlsKey } : undefined,
      });
      this.log("info", `seed serving signalling${c.relay.tlsCert ? " over TLS" : ""} and STUN on ${c.relay.listen.host}:${this.seed.port}`);
    }
    if (c.relay.enabled) this.log("info", `relaying for members: max_peers ${c.relay.maxPeers}, bandwidth ${c.relay.bandwidthBps ? `${c.relay.bandwidthBps / 1e6} Mbit/s shared fairly` : "unlimited"}`);
    // The data cipher's helper is built now, while the node may still be root (as the TUN's is).
    if (!gcmLib()) this.log("info", `data packets sealed with node:crypto: ${gcmWhyNot}`);
    const open = this.parts.openTun ?? openTun;
    const ipv4s = this.admission.ipv4s;
    this.tun = await open({ name: c.tun.name, mtu: this.mtu, ipv6: ipv6Of(this.id), prefix6: OVERLAY_PREFIX6_LEN, ipv4: ipv4s[0]?.address, prefix4: ipv4s[0]?.prefix, moreIpv4: ipv4s.slice(1) });
    this.tunSlot.device = this.tun;
    this.tun.onPackets(this.inside.fromTun.bind(this.inside));
    this.routes.start(this.tun.name, { ipv6: ipv6Of(this.id), ipv4: ipv4s });
    if (this.admission.networks.members.length) await this.startDns();
    this.log("info", `tun ${this.tun.name} up: ${[`${ipv6Of(this.id)}/${OVERLAY_PREFIX6_LEN}`, ...ipv4s.map((a) => `${a.address}/${a.prefix}`)].join(", ")}, mtu ${this.mtu}`);
    await this.links.start();
    const seed = this.seed;
    if (seed) this.links.attachLocalSeed?.((to, envelope) => seed.deliver(to, envelope), (id) => seed.registered(id));
    this.state = "up";
    if (!c.relay.enabled) for (const id of this.admission.allow) if (id !== this.id) this.links.connect(id); // a relay: see tick()
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  /** Stop everything this node started; safe to call twice. */
  async stop(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    if (this.ticker) clearInterval(this.ticker);
    this.sessions.stop(); // a handshake signature still being made or checked sends and installs nothing
    this.prober.stop();
    this.routes.stop();
    await this.links.stop().catch((e) => this.log("warn", `stopping links: ${e}`));
    for (const d of this.dns) d.stop();
    await this.tun?.close().catch((e) => this.log("warn", `closing tun: ${e}`));
    await this.seed?.stop();
    this.log("info", "stopped");
  }

  /**
   * Answer NAME.NETWORK (A and AAAA) on our overlay addresses, port 53, for this node and the members
   * it has met. The host's resolver is left alone; point it here to use the names.
   */
  private async startDns(): Promise<void> {
    const hosts = [ipv6Of(this.id), ...this.admission.ipv4s.map((a) => a.address)];
    for (const host of hosts) {
      try {
        this.dns.push(await startDns(host, (name, type) => this.admission.dnsLookup(name, type), 53, (name) => this.resolveName(name), this.routes.dnsForward((n) => this.admission.networks.members.some((m) => n.endsWith(`.${m.info.name}`)))));
      } catch (e) {
        this.log("warn", `dns: cannot listen on ${host}:53: ${(e as Error).message}`);
      }
    }
    if (this.dns.length) this.log("info", `dns: answering NAME.NETWORK on ${hosts.join(", ")} port 53`);
  }

  /** The node whose overlay address (IPv6 or IPv4, as text) `addr` is: ourselves or a peer. */
  private peerAt(addr: string): NodeId | undefined {
    const v6 = parseIpv6(addr), v4 = v6 ? null : parseIpv4(addr);
    if (v6) return equal16(v6, 0, ipv6BytesOf(this.id)) ? this.id : this.peers.byAddress6(v6)?.id;
    if (!v4) return undefined;
    if (this.admission.ipv4s.some((a) => a.address === addr)) return this.id;
    return this.peers.byIpv4Key(ipv4KeyOf(v4))?.id;
  }

  /** A DNS name NAME.NETWORK not known yet: when NETWORK is ours, ask our relays who NAME is (≤ 1.5 s). */
  private async resolveName(name: string): Promise<void> {
    const dot = name.lastIndexOf(".");
    if (dot < 1 || !this.admission.networks.members.some((m) => m.info.name === name.slice(dot + 1))) return;
    await this.lookups.lookup({ name: name.slice(0, dot) }, 1500);
  }

  /**
   * Apply a re-read config without dropping sessions (SIGHUP). The allow-list and log level take
   * effect at once: peers no longer allowed lose their session and link. Keys that shape the TUN, the
   * identity or the listeners need a restart, and the log says which.
   */
  reload(next: Config): void {
    // Certificates: a renewed one is presented from the next handshake on (every session rekeys
    // within 2 minutes), so renewal needs no restart and drops nothing.
    const claims = this.admission.reloadNetworks();
    if (claims) this.sessions.setClaims(claims);
    const before = this.admission.allow;
    this.admission.allow = new Set(next.network.allow as NodeId[]);
    for (const id of before) {
      if (this.admission.allow.has(id)) continue;
      this.sessions.close(id, "removed from [network] allow");
      this.links.disconnect(id, "removed from [network] allow");
      this.log("info", `peer ${id} removed from the allow-list: session closed`);
    }
    for (const id of this.admission.allow) {
      if (before.has(id) || id === this.id) continue;
      this.peers.ensure(id);
      this.links.connect(id, true);
      this.log("info", `peer ${id} added to the allow-list`);
    }
    if (JSON.stringify(next.paths.weights) !== JSON.stringify(this.router.weights)) this.setWeights(next.paths.weights);
    // A renewed certificate (certbot) is taken without a restart: new connections get it.
    try {
      this.seed?.reloadTls();
    } catch (e) {
      this.log("warn", `reload: seed certificate not reloaded, the old one stays: ${(e as Error).message}`);
    }
    const c = this.config;
    const restart: string[] = [];
    if (next.node.name !== c.node.name) restart.push("[node] name");
    if (next.node.ipv4?.address !== c.node.ipv4?.address || next.node.ipv4?.prefix !== c.node.ipv4?.prefix) restart.push("[node] ipv4");
    if (next.node.stateDir !== c.node.stateDir) restart.push("[node] state_dir");
    if (JSON.stringify(next.network.seeds) !== JSON.stringify(c.network.seeds)) restart.push("[network] seeds");
    if (JSON.stringify(next.tun) !== JSON.stringify(c.tun)) restart.push("[tun]");
    if (JSON.stringify(next.relay) !== JSON.stringify(c.relay)) restart.push("[relay]");
    if (JSON.stringify(next.api) !== JSON.stringify(c.api)) restart.push("[api]");
    this.routes.setExitNode(next.routes.exitNode);
    if (JSON.stringify({ ...next.routes, exitNode: null }) !== JSON.stringify({ ...c.routes, exitNode: null })) restart.push("[routes] (all but exit_node)");
    if (next.paths.decisionLog !== c.paths.decisionLog || next.paths.decisionLogMaxBytes !== c.paths.decisionLogMaxBytes) restart.push("[paths] decision_log");
    if (restart.length) this.log("warn", `reload: ${restart.join(", ")} changed; restart the node for that to take effect`);
  }

  /** Measure the RTT to a peer through the overlay, connecting first if needed. */
  async ping(target: string, timeoutMs = 3000): Promise<{ peer: Peer; path: string | null; rttMs: number | null }> {
    // Not known yet: a member of our networks named by IPv4 address or name is asked for (./lookups.ts);
    // a full node id nothing named is refused at once (no lookup, no peer entry, no link attempt).
    const peer = this.peers.resolve(target) ?? (await this.lookups.find(target, timeoutMs));
    if (!peer && isNodeId(target.trim().toLowerCase()))
      throw new NodeError("unknown-peer", `node ${target.trim()} is not a peer this node knows: ping a member of our networks by name or overlay IPv4 address (it is looked up), or by id once 'trellis status' lists it`);
    if (!peer)
      throw new NodeError("unknown-peer", `no node matches ${JSON.stringify(target)}: it is not a node id, id prefix, name or overlay address this node knows${this.admission.networks.members.length ? ", and no relay named a member of our networks by it" : ""}; check the spelling ('trellis status' lists known nodes)`);
    if (!peer.pub) this.router.lookup(peer.id);
    const rttMs = await this.prober.ping(peer.id, timeoutMs);
    return { peer, path: pathTo(this.view, peer.id), rttMs };
  }

  /** What the status views read (./status.ts). */
  private get view(): StatusSource {
    return {
      id: this.id, config: this.config, mtu: this.mtu, startedAt: this.startedAt, seed: this.seed !== undefined, tun: this.tun,
      peers: this.peers, admission: this.admission, sessions: this.sessions, router: this.router, links: this.links, inside: this.inside, outside: this.outside,
      hold: this.hold,
      routes: this.routes,
    };
  }

  status(): NodeStatus {
    return nodeStatus(this.view);
  }

  /** Every destination the path policy tracks, with candidates, features, indices and choice (GET /v1/paths). */
  paths(): PathView[] {
    return pathViews(this.view);
  }

  /** The relays this node links to, with their measurements (GET /v1/relays, `trellis relays`). */
  relays(): (LinkReport & { name: string | null; chosen_for: number; load: number | null })[] {
    return relayViews(this.view);
  }

  /** The networks this node is a member of, from its certificates. */
  networkList(): { id: string; name: string; ipv4: string | null; tags: string[]; expires: number }[] {
    return this.admission.networks.members.map((m) => ({ id: m.info.id, name: m.info.name, ipv4: m.membership.ipv4 ?? null, tags: m.membership.tags, expires: m.membership.notAfter }));
  }

  /** Whether `host` is an address inside the overlay (routed into our TUN): never a link's underlay. */
  private isOverlayAddress(host: string): boolean {
    const v6 = parseIpv6(host);
    if (v6) return inOverlayPrefix6(v6);
    const v4 = parseIpv4(host);
    return v4 !== null && this.admission.ipv4s.some((a) => inPrefix(v4, 0, parseIpv4(a.address)!, a.prefix));
  }

  /** Replace the path policy's reward weights (reload, or an outside learner through the API). */
  setWeights(w: RewardWeights): void {
    this.router.weights = { ...w };
    this.log("info", `path policy weights: latency ${w.latency}, loss ${w.loss}, goodput ${w.goodput}`);
  }

  get weights(): RewardWeights {
    return { ...this.router.weights };
  }

  /** Counters for /metrics. */
  get routeStats() {
    return this.router.stats;
  }

  /** A policy record from the API: install it when newer, and pass it on (./overlay.ts). Returns its version. */
  setPolicy(record: Uint8Array): number | undefined {
    return this.overlay.setPolicy(record);
  }

  /** A revocation record from the API: store it, cut the revoked node off, pass it on (./overlay.ts). */
  addRevocation(record: Uint8Array): string | undefined {
    return this.overlay.addRevocation(record);
  }

  /** The underlay addresses (IP literals) our links and seeds use (exit mode keeps them off the TUN; routes.ts adds seeds named by hostname). */
  private underlayAddresses(): string[] {
    const out = new Set<string>();
    for (const s of this.config.network.seeds) {
      const host = new URL(s).hostname.replace(/^\[|\]$/g, "");
      if (parseIpv4(host) || parseIpv6(host)) out.add(host);
    }
    for (const l of this.router.linksReport()) {
      const host = this.links.link(l.peer)?.remote?.split(" ")[0]?.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
      if (host && (parseIpv4(host) || parseIpv6(host)) && !this.isOverlayAddress(host)) out.add(host);
    }
    return [...out];
  }

  /** Whether a router can be queried now; if not, start what it takes (its keys, a link). */
  private reachRouter(id: NodeId): boolean {
    const p = this.peers.ensure(id);
    if (p.pub && this.router.hasPath(id)) return true;
    if (!p.pub) this.router.lookup(id);
    this.links.connect(id);
    return false;
  }

  private tick(): void {
    this.checks.drain();
    this.sessions.tick();
    this.inside.tick();
    this.router.tick();
    this.routes.tick();
    this.lookups.tick();
    this.peering.tick(Date.now());
  }
}

/** The certificates in a peer's handshake claims. */
const decodeCerts = (claims: Uint8Array) => decodeClaims(claims).certs ?? [];

export type NodeErrorCode = "unknown-peer";
export class NodeError extends Error {
  constructor(readonly code: NodeErrorCode, message: string) {
    super(message);
    this.name = "NodeError";
  }
}
