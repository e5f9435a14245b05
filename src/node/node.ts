// The node's life: down → up → closed. Wires identity, TUN, links, sessions and the API together.
//
// Ownership: the Node owns every part it starts and is the only one that calls across parts.
//   TUN ──batch──▶ Inside ──route──▶ Sessions.send ──seal──▶ Router.send ──▶ Link: direct, or a relay's
//   Link ──▶ Router.receive ──(for us)──▶ Sessions.receive ──open──▶ Outside (source check) ──▶ TUN
//                          └─(for another, when we relay)──▶ next hop's Link
// Signalling (LinkManager) tells the node who a link's peer is (its verified public identity);
// the session handshake tells it what the peer claims (name, IPv4), checked against the allow-list.
import { inOverlayPrefix6, ipv6BytesOf, ipv6Of, OVERLAY_PREFIX6_LEN, parseIpv4, parseIpv6 } from "../identity/address.ts";
import { isNodeId, type Identity, type NodeId, type PublicIdentity } from "../identity/identity.ts";
import type { Config } from "../config/schema.ts";
import { Sessions } from "../session/sessions.ts";
import { LinkManager, type LinkFactory, type Links } from "../tether/links.ts";
import type { Link } from "../tether/webrtc.ts";
import { startSeed } from "../seed/server.ts";
import type { TunDevice } from "../tun/device.ts";
import { openTun } from "../tun/linux.ts";
import { Inside } from "../datapath/inside.ts";
import { Outside } from "../datapath/outside.ts";
import { inPrefix, ipv4KeyOf } from "../datapath/ip.ts";
import { formatIpv4 } from "../identity/address.ts";
import { TooBigNotices } from "../datapath/toobig.ts";
import { DATA_OVERHEAD } from "../session/keypair.ts";
import { decodeClaims, encodeClaims, PeerTable, type Ipv4ClaimRules, type Peer } from "../datapath/peers.ts";
import { answerQuery, certFor, decodeQuery, encodeQuery, MemberForwards, MemberWaits, type KnownMember, type MemberQuery } from "./members.ts";
import { decodeCertificate } from "../trust/certificate.ts";
import { CONTROL_POLICY, CONTROL_REVOCATION, Prober, recordMessage } from "./control.ts";
import { Router, type LinkReport } from "../route/router.ts";
import { TYPE_SIGNAL } from "../route/frame.ts";
import { identityRecordCrypto, recordIdentity, type DiscoveryRecord } from "../route/record.ts";
import { DecisionLog, RecentPaths } from "../route/decisions.ts";
import type { RewardWeights } from "../route/policy.ts";
import type { PolicyView } from "../route/steering.ts";
import { Networks } from "../trust/networks.ts";
import { startDns } from "../trust/dns.ts";
import type { Membership } from "../trust/certificate.ts";
import { logger, type Log } from "../log.ts";
import { Routes, type RoutesStatus } from "./routes.ts";

/** `[tun] mtu = "auto"`: Ethernet's 1500 whatever the underlay; a path that takes less says so (./toobig). */
export const AUTO_MTU = 1500;
const TICK_MS = 100;
const RTT_PROBE_EVERY_MS = 5000;
const PENDING_PER_PEER = 64;

export type NodeState = "down" | "up" | "closed";

export interface PeerStatus {
  id: NodeId;
  name: string | null;
  ipv6: string;
  ipv4: string | null;
  path: string | null;
  paths: { name: string; alive: boolean; rtt_ms: number | null; loss: number; cost: number }[];
  /** Why this path: "direct link live", the policy's pick with its index, or the rule's. */
  why: string | null;
  rtt_ms: number | null;
  link: "none" | "connecting" | "open";
  /** The direct link's far end on the underlay ("198.18.1.2:40000 srflx"), when there is one. */
  underlay: string | null;
  /** IP bytes sent to and received from the peer through the overlay since start. */
  tx_bytes: number;
  rx_bytes: number;
  session: boolean;
  allowed: boolean;
  spoof_drops: number;
}

export interface NodeStatus {
  node: { id: NodeId; name: string; ipv6: string; ipv4: string | null; ipv4_all: string[]; tun: string; mtu: number; seed: boolean; uptime_s: number };
  peers: PeerStatus[];
  links: LinkReport[];
  relay: { enabled: boolean; load: number; forwarded: number; forwarded_bytes: number; sources: number; records: number };
  counters: Record<string, number>;
  /** Subnet routes: what this node advertises, and the routes it accepted with their routers. */
  routes: RoutesStatus;
}

/** Parts given from outside: a test passes a memory TUN and in-memory links (src/tether/memory.ts). */
export interface NodeParts {
  openTun?: typeof openTun;
  /** The links to adjacent nodes (default: the LinkManager, WebRTC signalled through the seeds). */
  links?: LinkFactory;
}

export class Node {
  state: NodeState = "down";
  readonly peers = new PeerTable();
  private allow: Set<NodeId>;
  private readonly sessions: Sessions;
  private readonly links: Links;
  private readonly router: Router;
  private readonly prober: Prober;
  private readonly inside: Inside;
  private readonly routes: Routes;
  private readonly outside: Outside;
  private readonly pending = new Map<NodeId, Uint8Array[]>();
  /** Allow-listed peers we have had a session with (no longer retried in the background). */
  private readonly met = new Set<NodeId>();
  private networks: Networks;
  /** What we claim in handshakes: without and with our certificates (see makeClaims). */
  private claims: { plain: Uint8Array; full: Uint8Array } = { plain: new Uint8Array(0), full: new Uint8Array(0) };
  /** Our IPv4 addresses: one per network from its certificate (signed), else [node] ipv4. The first is primary. */
  private readonly ipv4s: { address: string; prefix: number }[];
  private get ipv4(): { address: string; prefix: number } | undefined {
    return this.ipv4s[0];
  }
  private tun?: TunDevice;
  private seed?: { port: number; deliver(to: NodeId, msg: unknown): boolean; stop(): void | Promise<void> };
  private dns: { stop(): void }[] = [];
  private ticker?: ReturnType<typeof setInterval>;
  private lastProbe = 0;
  private readonly startedAt = Date.now();
  private decisions?: DecisionLog;
  /** The last path decisions and path changes, for the page. */
  readonly recent = new RecentPaths();
  private readonly log: Log = logger("node");
  readonly mtu: number;

  constructor(readonly config: Config, readonly identity: Identity, private readonly parts: NodeParts = {}) {
    this.allow = new Set(config.network.allow as NodeId[]);
    for (const id of this.allow) if (id !== identity.public.id) this.peers.ensure(id);
    // Pinned addresses route from the start, before any handshake.
    for (const [id, a] of Object.entries(config.network.allowIpv4 ?? {}) as [NodeId, string][]) if (this.allow.has(id)) this.peers.applyClaims(id, { ipv4: a });
    this.mtu = config.tun.mtu === "auto" ? AUTO_MTU : config.tun.mtu;
    this.networks = this.loadNetworks();
    const signed = this.networks.members.flatMap((m) => (m.membership.ipv4 ? [{ address: m.membership.ipv4, prefix: m.membership.ipv4Prefix }] : []));
    this.ipv4s = signed.length ? signed : config.node.ipv4 ? [config.node.ipv4] : [];
    this.claims = this.makeClaims();
    const sessionLog = logger("session");
    this.sessions = new Sessions({
      identity,
      claims: this.claims.full,
      // Certificates go in responses only to peers that sent theirs: a response never outgrows the initiation.
      responseClaims: (_remote, theirs) => (decodeClaims(theirs).certs?.length ? this.claims.full : this.claims.plain),
      accept: (remote, claims) => this.admit(remote, decodeClaims(claims).certs ?? []),
      transmit: (to, packet) => this.transmit(to, packet),
      deliver: (from, payload) => this.deliver(from, payload),
      onEstablished: (peer, remote, claims) => this.established(peer, remote, claims),
      onClosed: (peer, reason) => sessionLog("info", `session with ${peer} closed: ${reason}`),
      // Cookie replies only to senders we know: a reply to a sender a relay merely claims would start a lookup and a link attempt.
      knows: (id) => this.peers.get(id)?.pub !== undefined || this.links.link(id) !== undefined,
      log: (level, msg) => sessionLog(level, msg),
    });
    const linkLog = logger("link");
    this.links = (parts.links ?? ((o) => new LinkManager(o)))({
      identity,
      seeds: config.network.seeds,
      accept: (remote, certs) => this.admitLink(remote, certs),
      proofs: () => this.networks.proofs(),
      log: (level, msg) => linkLog(level, msg),
      overlay: (to, envelope) => this.router.sendSignal(to, new TextEncoder().encode(JSON.stringify(envelope))),
      overlayReaches: (to) => this.router.hasRelayPath(to),
      avoidAddress: (host) => this.isOverlayAddress(host),
      moreSeeds: () => this.router.relayHints().filter((h) => !config.network.seeds.includes(h)),
    });
    const routeLog = logger("route");
    this.router = new Router({
      self: identity.public.id,
      relay: { enabled: config.relay.enabled, bandwidthBps: config.relay.bandwidthBps, maxPeers: config.relay.maxPeers },
      links: {
        link: (peer) => this.links.link(peer),
        connect: (peer) => this.links.connect(peer),
        disconnect: (peer, reason) => this.links.disconnect(peer, reason),
      },
      now: () => performance.timeOrigin + performance.now(),
      crypto: identityRecordCrypto(identity),
      idleTimeoutMs: config.node.idleTimeoutMs,
      // Our seed's URL, when it listens on a specific address (0.0.0.0 says nothing to others).
      hints: () => (this.seed && !["0.0.0.0", "::"].includes(config.relay.listen.host) ? [`http://${config.relay.listen.host.includes(":") ? `[${config.relay.listen.host}]` : config.relay.listen.host}:${this.seed.port}`] : []),
      deliver: (src, inner) => this.fromRouter(src, inner),
      onRecord: (r) => this.onRecord(r),
      onPathUp: () => this.flushPending(),
      memberLookup: (from, q) => this.answerMember(from, q),
      onMember: (from, a) => this.onMember(from, a),
      weights: { ...config.paths.weights },
      onDecision: (d) => {
        this.decisions?.write(d);
        this.recent.decision(d);
      },
      onPathChange: (dst, from, to) => this.recent.change(dst, from, to),
      log: (level, msg) => routeLog(level, msg),
    });
    if (config.paths.decisionLog) this.decisions = new DecisionLog(config.paths.decisionLog, config.paths.decisionLogMaxBytes, (m) => routeLog("warn", m));
    this.prober = new Prober((to, payload) => this.sessions.send(to, payload), undefined, (from) => this.router.traceFrom(from));
    this.routes = new Routes({
      config,
      self: identity.public.id,
      grant: this.networks.members.flatMap((m) => m.membership.subnets),
      send: (to, payload) => this.sessions.send(to, payload),
      reach: (to) => this.reachRouter(to),
      resetSession: (to) => this.sessions.isEstablished(to) && this.sessions.close(to, "router silent: handshaking afresh"),
      ask: (query) => this.router.lookupMember(encodeQuery(query)),
      membership: (id) => (this.allow.has(id) ? undefined : this.memberships.get(id)),
      name: (id) => this.nameOf(this.peers.get(id)),
      log: logger("routes"),
    });
    this.inside = new Inside(this.peers, (to, packet) => this.sendTo(to, packet), (packet, off) => this.toUnknown(packet, off), (packet, off) => this.toUnknown4(packet, off), (packet, off, v) => this.routes.route(packet, off, v));

    this.outside = new Outside(
      this.peers,
      { ipv6: ipv6BytesOf(identity.public.id), ipv4Keys: this.ipv4s.map((a) => ipv4KeyOf(parseIpv4(a.address)!)), forwards: (packet, off, v) => this.routes.forwards(packet, off, v) },
      (packet) => this.tun?.writeOne(packet),
      (from, payload) => this.control(from, payload),
      (from) => this.log("debug", `dropped a packet from ${from}: inner source is not its address`),
      (from, packet) => {
        const f = this.firewallFor(from);
        return !f || f.fw.inbound(from, f.theirTags, f.ourTags, packet);
      },
    );
  }

  get id(): NodeId {
    return this.identity.public.id;
  }

  /** Bring the node up: TUN, seed (if this node is one), signalling and links. */
  async start(): Promise<void> {
    if (this.state !== "down") throw new Error(`node: start() in state ${this.state}`);
    const c = this.config;
    if (c.relay.enabled && c.relay.seed) {
      // Members link to the relay the seed announces (this node): its signalling is served in-process.
      this.seed = await startSeed({ listen: `${c.relay.listen.host}:${c.relay.listen.port}`, log: logger("seed"), relay: this.id, local: { id: this.id, receive: (m) => this.links.handleSignal(m) } });
      this.log("info", `seed serving signalling and STUN on ${c.relay.listen.host}:${this.seed.port}`);
    }
    if (c.relay.enabled) this.log("info", `relaying for members: max_peers ${c.relay.maxPeers}, bandwidth ${c.relay.bandwidthBps ? `${c.relay.bandwidthBps / 1e6} Mbit/s shared fairly` : "unlimited"}`);
    const open = this.parts.openTun ?? openTun;
    this.tun = await open({
      name: c.tun.name,
      mtu: this.mtu,
      ipv6: ipv6Of(this.id),
      prefix6: OVERLAY_PREFIX6_LEN,
      ipv4: this.ipv4?.address,
      prefix4: this.ipv4?.prefix,
      moreIpv4: this.ipv4s.slice(1),
    });
    this.tun.onPackets((batch) => this.inside.fromTun(batch));
    this.routes.start(this.tun.name);
    if (this.networks.members.length) await this.startDns();
    this.log("info", `tun ${this.tun.name} up: ${[`${ipv6Of(this.id)}/${OVERLAY_PREFIX6_LEN}`, ...this.ipv4s.map((a) => `${a.address}/${a.prefix}`)].join(", ")}, mtu ${this.mtu}`);
    this.links.onIdentity((remote) => this.learn(remote));
    this.links.onLink((link, remote) => this.linked(link, remote));
    this.links.onSeedRelay((relay) => this.router.addRelay(relay));
    await this.links.start();
    const seed = this.seed;
    if (seed) this.links.attachLocalSeed((to, envelope) => seed.deliver(to, envelope));
    this.state = "up";
    for (const id of this.allow) if (id !== this.id) this.links.connect(id);
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  /** Stop everything this node started; safe to call twice. */
  async stop(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    if (this.ticker) clearInterval(this.ticker);
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
    const lookup = (name: string, type: "a" | "aaaa") => {
      const dot = name.lastIndexOf(".");
      const [host, network] = [name.slice(0, dot), name.slice(dot + 1)];
      const member = this.networks.members.find((m) => m.info.name === network);
      if (!member || dot < 1) return undefined;
      let v6: Uint8Array | undefined, v4: string | undefined;
      // One node per name: the holder the network's registry settled on (trust/registry.ts), not whoever we met last.
      const holder = this.networks.nameHolder(member.info.id, host);
      const m = holder === this.id ? member.membership : holder ? this.memberships.get(holder) : undefined;
      if (holder && m?.networkId === member.info.id && m.name === host) [v6, v4] = [ipv6BytesOf(holder), m.ipv4];
      if (!v6) return undefined;
      return type === "aaaa" ? [v6] : v4 ? [parseIpv4(v4)!] : [];
    };
    for (const host of [ipv6Of(this.id), ...this.ipv4s.map((a) => a.address)]) {
      try {
        this.dns.push(await startDns(host, lookup, 53, (name) => this.resolveName(name)));
      } catch (e) {
        this.log("warn", `dns: cannot listen on ${host}:53: ${(e as Error).message}`);
      }
    }
    if (this.dns.length) this.log("info", `dns: answering NAME.NETWORK on ${[ipv6Of(this.id), ...this.ipv4s.map((a) => a.address)].join(", ")} port 53`);
  }

  /** A DNS name NAME.NETWORK not known yet: when NETWORK is ours, ask our relays who NAME is (≤ 1.5 s). */
  private async resolveName(name: string): Promise<void> {
    const dot = name.lastIndexOf(".");
    if (dot < 1 || !this.networks.members.some((m) => m.info.name === name.slice(dot + 1))) return;
    await this.lookupMember({ name: name.slice(0, dot) }, 1500);
  }

  /** Read our networks and certificates from the state directory, logging what we are a member of. */
  private loadNetworks(): Networks {
    const trustLog = logger("trust");
    const networks = new Networks(this.config.node.stateDir, this.identity.public.id, (m) => trustLog("warn", m));
    for (const m of networks.members) {
      trustLog("info", `member of network ${m.info.name} (${m.info.id}) as ${m.membership.name}${m.membership.ipv4 ? `, ${m.membership.ipv4}` : ""}, certificate valid until ${new Date(m.membership.notAfter * 1000).toISOString()}`);
      if (Date.now() / 1000 > m.membership.notAfter) trustLog("warn", `our certificate for network ${m.info.name} expired: peers will refuse us`);
    }
    return networks;
  }

  /** Claims travel encrypted in the handshake: name, IPv4, and our certificates. */
  private makeClaims(): { plain: Uint8Array; full: Uint8Array } {
    const plain = encodeClaims({ name: this.config.node.name, ipv4: this.ipv4?.address });
    const certs = this.networks.proofs();
    return { plain, full: certs.length ? encodeClaims({ name: this.config.node.name, ipv4: this.ipv4?.address, certs }) : plain };
  }

  /**
   * Apply a re-read config without dropping sessions (SIGHUP). The allow-list and log level take
   * effect at once: peers no longer allowed lose their session and link. Keys that shape the TUN, the
   * identity or the listeners need a restart, and the log says which.
   */
  reload(next: Config): void {
    // Certificates: a renewed one is presented from the next handshake on (every session rekeys
    // within 2 minutes), so renewal needs no restart and drops nothing.
    const networks = this.loadNetworks();
    const ipv4s = networks.members.flatMap((m) => (m.membership.ipv4 ? [m.membership.ipv4] : []));
    if (ipv4s.length && ipv4s.join() !== this.ipv4s.map((a) => a.address).join()) this.log("warn", `reload: the certificates' IPv4 addresses are now ${ipv4s.join(", ")}; restart the node to use them`);
    else {
      this.networks = networks;
      this.claims = this.makeClaims();
      this.sessions.setClaims(this.claims.full);
    }
    const before = this.allow;
    this.allow = new Set(next.network.allow as NodeId[]);
    for (const id of before) {
      if (this.allow.has(id)) continue;
      this.sessions.close(id, "removed from [network] allow");
      this.links.disconnect(id, "removed from [network] allow");
      this.log("info", `peer ${id} removed from the allow-list: session closed`);
    }
    for (const id of this.allow) {
      if (before.has(id) || id === this.id) continue;
      this.peers.ensure(id);
      this.links.connect(id, true);
      this.log("info", `peer ${id} added to the allow-list`);
    }
    if (JSON.stringify(next.paths.weights) !== JSON.stringify(this.router.weights)) this.setWeights(next.paths.weights);
    const c = this.config;
    const restart: string[] = [];
    if (next.node.name !== c.node.name) restart.push("[node] name");
    if (next.node.ipv4?.address !== c.node.ipv4?.address || next.node.ipv4?.prefix !== c.node.ipv4?.prefix) restart.push("[node] ipv4");
    if (next.node.stateDir !== c.node.stateDir) restart.push("[node] state_dir");
    if (JSON.stringify(next.network.seeds) !== JSON.stringify(c.network.seeds)) restart.push("[network] seeds");
    if (JSON.stringify(next.tun) !== JSON.stringify(c.tun)) restart.push("[tun]");
    if (JSON.stringify(next.relay) !== JSON.stringify(c.relay)) restart.push("[relay]");
    if (JSON.stringify(next.api) !== JSON.stringify(c.api)) restart.push("[api]");
    if (next.paths.decisionLog !== c.paths.decisionLog || next.paths.decisionLogMaxBytes !== c.paths.decisionLogMaxBytes) restart.push("[paths] decision_log");
    if (restart.length) this.log("warn", `reload: ${restart.join(", ")} changed; restart the node for that to take effect`);
  }

  /** Measure the RTT to a peer through the overlay, connecting first if needed. */
  async ping(target: string, timeoutMs = 3000): Promise<{ peer: Peer; path: string | null; rttMs: number | null }> {
    let peer = this.peers.resolve(target);
    // A member we have not met, named by IPv4 address or by name (NAME or NAME.NETWORK): ask our relays.
    if (!peer && this.networks.members.length) {
      const t = target.trim().toLowerCase();
      const [name, network] = t.split(".", 2);
      if (parseIpv4(t)) {
        await this.lookupMember({ ipv4: t }, timeoutMs / 2);
        peer = this.peers.resolve(t);
      } else if (!network || this.networks.members.some((m) => m.info.name === network)) {
        await this.lookupMember({ name }, timeoutMs / 2);
        peer = this.peers.resolve(name);
      }
    }
    // A member of one of our networks need not be listed anywhere: its full node id is enough. It
    // becomes a peer (and gets a link attempt) once a relay hands us its signed record; a made-up id
    // costs nothing. Only with no relay to ask does the id go to the seeds as it is.
    if (!peer && isNodeId(target.trim().toLowerCase()) && this.networks.members.length) {
      const id = target.trim().toLowerCase() as NodeId;
      if (this.router.linksReport().some((l) => l.relay && l.alive)) {
        const end = performance.now() + timeoutMs;
        let r = this.router.record(id);
        while (!r && performance.now() < end) {
          this.router.lookup(id);
          await Bun.sleep(Math.min(100, Math.max(1, end - performance.now())));
          r = this.router.record(id);
        }
        const pub = r && !r.relay ? recordIdentity(r) : undefined;
        if (pub?.id === id) {
          this.learn(pub);
          peer = this.peers.ensure(id);
          this.links.connect(id, true);
        }
      } else {
        peer = this.peers.ensure(id);
        this.links.connect(peer.id, true);
      }
    }
    if (!peer)
      throw new NodeError("unknown-peer", `no node matches ${JSON.stringify(target)}: it is not a node id, id prefix, name or overlay address this node knows${this.networks.members.length ? ", and no relay named a member of our networks by it" : ""}; check the spelling ('trellis status' lists known nodes)`);
    if (!peer.pub) this.router.lookup(peer.id);
    const rttMs = await this.prober.ping(peer.id, timeoutMs);
    return { peer, path: this.pathTo(peer.id), rttMs };
  }

  status(): NodeStatus {
    const c = this.config;
    const peers = this.peers.all().map((p): PeerStatus => {
      const link = this.links.link(p.id);
      return {
        id: p.id,
        name: this.nameOf(p),
        ipv6: p.ipv6,
        ipv4: p.ipv4 ?? null,
        path: this.pathTo(p.id),
        paths: this.router.report(p.id).map((r) => ({ name: r.name, alive: r.alive, rtt_ms: r.rttMs === undefined ? null : Math.round(r.rttMs * 1000) / 1000, loss: Math.round(r.loss * 1000) / 1000, cost: r.cost })),
        why: this.why(p.id),
        rtt_ms: p.rttMs === undefined ? null : Math.round(p.rttMs * 1000) / 1000,
        link: link ? (link.state === "open" ? "open" : link.state === "connecting" ? "connecting" : "none") : "none",
        underlay: link?.state === "open" ? (link.remote ?? null) : null,
        tx_bytes: p.txBytes,
        rx_bytes: p.rxBytes,
        session: this.sessions.isEstablished(p.id),
        allowed: this.allow.has(p.id),
        spoof_drops: p.spoofDrops,
      };
    });
    return {
      node: {
        id: this.id,
        name: c.node.name,
        ipv6: ipv6Of(this.id),
        ipv4: this.ipv4?.address ?? null,
        ipv4_all: this.ipv4s.map((a) => a.address),
        tun: this.tun?.name ?? c.tun.name,
        mtu: this.mtu,
        seed: this.seed !== undefined,
        uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      },
      peers,
      links: this.router.linksReport().map((l) => ({ ...l, fast: this.links.link(l.peer)?.fastStats ?? null })),
      relay: { enabled: c.relay.enabled, load: this.router.load(), forwarded: this.router.stats.forwarded, forwarded_bytes: this.router.stats.forwardedBytes, sources: this.router.sources, records: this.router.recordCount },
      counters: {
        tun_rx_packets: this.tun?.stats.rxPackets ?? 0,
        tun_tx_packets: this.tun?.stats.txPackets ?? 0,
        tun_tx_dropped: this.tun?.stats.txDropped ?? 0,
        too_big_sent: this.tooBig.sent,
        inside_no_route: this.inside.stats.noRoute,
        member_lookup_held: this.waits.heldTotal,
        member_lookup_dropped: this.waits.dropped,
        outside_spoofed: this.outside.stats.spoofed,
        outside_not_for_us: this.outside.stats.notForUs,
        outside_policy_dropped: this.outside.stats.policyDropped,
        ...Object.fromEntries(Object.entries(this.sessions.stats).map(([k, v]) => [`session_${k}`, Number(v)])),
        ...Object.fromEntries(Object.entries(this.router.stats).map(([k, v]) => [`route_${k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`)}`, Number(v)])),
      },
      routes: this.routes.status(),
    };
  }

  /** A peer's name: from its session, else from the certificate it showed when linking (relays we never talk to end to end). */
  private nameOf(p: Peer | undefined): string | null {
    return p ? (p.name ?? this.memberships.get(p.id)?.name ?? null) : null;
  }

  /** The path packets to `id` take now ("direct", or "relay:<id>" per hop), or null when there is none. */
  private pathTo(id: NodeId): string | null {
    return this.sessions.isEstablished(id) ? this.router.pathTo(id) : null;
  }

  /** Whether `host` is an address inside the overlay (routed into our TUN): never a link's underlay. */
  private isOverlayAddress(host: string): boolean {
    const v6 = parseIpv6(host);
    if (v6) return inOverlayPrefix6(v6);
    const v4 = parseIpv4(host);
    return v4 !== null && this.ipv4s.some((a) => inPrefix(v4, 0, parseIpv4(a.address)!, a.prefix));
  }

  /** Why packets to `id` take the path they take, in a few words. */
  private why(id: NodeId): string | null {
    const path = this.pathTo(id);
    if (!path) return null;
    if (path === "direct") return "direct link live (preferred while its loss is within 0.2 of the best relay's)";
    const p = this.router.policyReport(id);
    const first = path.split(" ")[0];
    if (!p || !p.choice) return "only relay path, or policy not started yet (lowest cost: rtt × (1 + 10·loss) + 5 ms)";
    const mine = p.indices.find((i) => i.arm === first);
    const others = p.indices.filter((i) => i.arm !== first).map((i) => `${i.arm.slice(0, 14)} ${fmt(i.index)}`).join(", ");
    if (p.choice !== first) return `policy chose ${p.choice.slice(0, 14)} but it is not live; rule picked this one`;
    return `policy (discounted UCB, round ${p.round}): index ${fmt(mine?.index ?? NaN)} vs ${others || "no other"}`;
  }

  /** Every destination the path policy tracks, with candidates, features, indices and choice (GET /v1/paths). */
  paths(): { peer: NodeId; name: string | null; path: string | null; why: string | null; candidates: PeerStatus["paths"]; policy: PolicyView | null }[] {
    return this.peers.all().map((p) => {
      const policy = this.router.policyReport(p.id) ?? null;
      return {
        peer: p.id,
        name: this.nameOf(p),
        path: this.pathTo(p.id),
        why: this.why(p.id),
        candidates: this.router.report(p.id).map((r) => ({ name: r.name, alive: r.alive, rtt_ms: r.rttMs === undefined ? null : Math.round(r.rttMs * 1000) / 1000, loss: Math.round(r.loss * 1000) / 1000, cost: r.cost })),
        policy: policy && { ...policy, indices: policy.indices.map((i) => ({ ...i, index: Number.isFinite(i.index) ? i.index : -1, bonus: Number.isFinite(i.bonus) ? i.bonus : -1 })) },
      };
    });
  }

  /** The relays this node links to, with their measurements (GET /v1/relays, `trellis relays`). */
  relays(): (LinkReport & { name: string | null; chosen_for: number; load: number | null })[] {
    const chosen = new Map<string, number>();
    for (const p of this.peers.all()) {
      const path = this.pathTo(p.id);
      if (path?.startsWith("relay:")) chosen.set(path.slice(6, 38), (chosen.get(path.slice(6, 38)) ?? 0) + 1);
    }
    return this.router.linksReport().filter((l) => l.relay).map((l) => ({ ...l, name: this.nameOf(this.peers.get(l.peer)), chosen_for: chosen.get(l.peer) ?? 0, load: this.router.record(l.peer)?.load ?? null }));
  }

  /** The networks this node is a member of, from its certificates. */
  networkList(): { id: string; name: string; ipv4: string | null; tags: string[]; expires: number }[] {
    return this.networks.members.map((m) => ({ id: m.info.id, name: m.info.name, ipv4: m.membership.ipv4 ?? null, tags: m.membership.tags, expires: m.membership.notAfter }));
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

  /** admit() for links, plus a relay's limit on how many peers it serves. */
  private admitLink(remote: PublicIdentity, certs: string[]): true | string {
    const c = this.config.relay;
    if (c.enabled && !this.links.link(remote.id) && this.links.count >= c.maxPeers) return `relay is full ([relay] max_peers = ${c.maxPeers})`;
    return this.admit(remote, certs);
  }

  /**
   * Who may talk to this node, checked at signalling and again inside the handshake: a node id in
   * [network] allow, or a node that shows a valid, unexpired, unrevoked certificate of a network this
   * node is in. The reason for a refusal is logged by the caller.
   */
  private admit(remote: PublicIdentity, certs: string[] = []): true | string {
    if (remote.id === this.id) return "that is this node's own id";
    if (this.allow.has(remote.id)) return true;
    if (this.networks.members.length === 0) return `node ${remote.id} is not in [network] allow`;
    const r = this.networks.check(remote.id, certs);
    if (typeof r === "string") return `node ${remote.id} is not in [network] allow and not a member: ${r}`;
    this.memberships.set(remote.id, r.membership);
    const cert = certFor(certs, r.membership.networkId, remote.id);
    if (cert) this.memberCerts.set(remote.id, cert);
    return true;
  }

  /** A policy record from the API or a peer: install it when newer, and pass it on. Returns its version. */
  setPolicy(record: Uint8Array): number | undefined {
    const r = this.networks.setPolicy(record);
    if (!r) return;
    this.log("info", `policy version ${r.version} of network ${r.network} installed; passing it on`);
    for (const p of this.peers.all()) if (this.sessions.isEstablished(p.id)) this.sessions.send(p.id, recordMessage(CONTROL_POLICY, record));
    return r.version;
  }

  /** The firewall that applies to traffic with `peer`: its network's, when it is a member by certificate. */
  private firewallFor(peer: NodeId) {
    const m = this.allow.has(peer) ? undefined : this.memberships.get(peer);
    if (!m) return undefined;
    const member = this.networks.member(m.networkId);
    return member?.firewall ? { fw: member.firewall, theirTags: m.tags, ourTags: member.membership.tags } : undefined;
  }

  /** Memberships peers proved, by node id (their names and IPv4 addresses are signed there). */
  private readonly memberships = new Map<NodeId, Membership>();

  /** A revocation record from the API or a peer: store it, cut the revoked node off, pass it on. */
  addRevocation(record: Uint8Array): string | undefined {
    const rev = this.networks.addRevocation(record);
    if (!rev) return;
    this.log("info", `revocation of ${rev.nodeId}${rev.reason ? ` (${rev.reason})` : ""} accepted; closing its session and passing it on`);
    if (!this.allow.has(rev.nodeId)) {
      this.memberships.delete(rev.nodeId);
      this.memberCerts.delete(rev.nodeId);
      this.sessions.close(rev.nodeId, "revoked");
      this.links.disconnect(rev.nodeId, "revoked");
    }
    for (const p of this.peers.all()) if (p.id !== rev.nodeId && this.sessions.isEstablished(p.id)) this.sessions.send(p.id, recordMessage(CONTROL_REVOCATION, record));
    return rev.nodeId;
  }

  private learn(remote: PublicIdentity): void {
    const p = this.peers.ensure(remote.id);
    p.pub = remote;
    this.sessions.learn(remote);
  }

  private linked(link: Link, remote: PublicIdentity): void {
    this.learn(remote);
    this.log("info", `link to ${remote.id} open`);
    link.onPacket((b) => this.router.receive(link.peer, b));
    link.onControl((b) => this.router.receive(link.peer, b));
    link.onClose((reason) => {
      this.router.unlinked(remote.id);
      this.log("info", `link to ${remote.id} closed: ${reason}`);
    });
    this.router.linked(remote.id);
    // A link to a peer we mean to talk to: start the session now unless packets are about to.
    if (!this.pending.get(remote.id)?.length && !this.sessions.isEstablished(remote.id) && this.allow.has(remote.id)) this.sessions.send(remote.id, new Uint8Array(0));
  }

  /**
   * A packet for a peer: seal it now if we know its keys and have any path (direct or a relay), else
   * hold it (bounded) while we look its record up through our relays and ask for a direct link.
   */
  private sendTo(to: NodeId, packet: Uint8Array): void {
    const peer = this.peers.get(to);
    this.firewallFor(to)?.fw.outbound(to, packet);
    this.router.active(to);
    if (peer) peer.txBytes += packet.length;
    if (peer?.pub && this.router.hasPath(to)) {
      const limit = this.router.packetLimit(to);
      if (limit !== undefined && packet.length + DATA_OVERHEAD > limit && this.tooBig.notify(to, packet, limit - DATA_OVERHEAD)) {
        this.log("debug", `packet of ${packet.length} bytes to ${to} is larger than its path takes (${limit - DATA_OVERHEAD}): told the sender`);
      }
      this.sessions.send(to, packet);
      return;
    }
    let q = this.pending.get(to);
    if (!q) this.pending.set(to, (q = []));
    if (q.length >= PENDING_PER_PEER) q.shift();
    q.push(packet);
    if (!peer?.pub) this.router.lookup(to);
    this.links.connect(to);
  }

  /** Packets larger than their path's fast channel: their senders are told (they still go, whole). */
  private readonly tooBig = new TooBigNotices((msg) => this.tun?.writeOne(msg));

  /** Send what waits for peers that now have keys and a path. */
  private flushPending(): void {
    for (const [to, q] of this.pending) {
      if (!this.peers.get(to)?.pub || !this.router.hasPath(to)) continue;
      this.pending.delete(to);
      for (const p of q) this.sessions.send(to, p);
    }
  }

  /**
   * A packet to an overlay address of a node we have not met: members need not be listed anywhere, so
   * hold it (bounded) and ask our relays whose address it is (only the owner's keys hash to it).
   */
  private toUnknown(packet: Uint8Array, off: number): void {
    if (this.networks.members.length === 0) return;
    const bits = packet.slice(off + 6, off + 16);
    const key = Buffer.from(bits).toString("hex");
    let q = this.pendingByAddress.get(key);
    if (!q) {
      if (this.pendingByAddress.size >= 256) return;
      this.pendingByAddress.set(key, (q = []));
    }
    if (q.length >= PENDING_PER_PEER) q.shift();
    q.push(packet);
    this.router.lookupAddress(bits);
  }
  private readonly pendingByAddress = new Map<string, Uint8Array[]>();

  /** The certificates members proved to us (links and sessions), to answer member lookups. */
  private readonly memberCerts = new Map<NodeId, Uint8Array>();
  /** Packets and people waiting for a member lookup (by IPv4 address or name). */
  private readonly waits = new MemberWaits();
  /** Lookups this relay passed on to other relays for its neighbours. */
  private readonly forwards = new MemberForwards();

  /**
   * A packet to an IPv4 address in one of our networks' prefixes that no known peer holds: hold it
   * (bounded, ./members.ts) and ask our relays which member holds the address.
   */
  private toUnknown4(packet: Uint8Array, off: number): boolean {
    if (this.networks.members.length === 0) return false;
    const dst = packet.subarray(off, off + 4);
    if (!this.ipv4s.some((a) => inPrefix(dst, 0, parseIpv4(a.address)!, a.prefix)) || this.ipv4s.some((a) => ipv4KeyOf(parseIpv4(a.address)!) === ipv4KeyOf(dst))) return false;
    const ipv4 = formatIpv4(dst);
    if (!this.waits.hold(ipv4, packet.slice())) return false;
    this.router.lookupMember(encodeQuery({ ipv4 }));
    return true;
  }

  /** Wait (at most `ms`) for our relays to say which member holds an IPv4 address or name (in a network we share). */
  private async lookupMember(q: MemberQuery, ms: number): Promise<void> {
    let query;
    try {
      query = encodeQuery(q);
    } catch {
      return;
    }
    if (this.networks.members.length === 0) return;
    const done = this.waits.wait(q, ms);
    this.router.lookupMember(query);
    await done;
  }

  /** A neighbour asks which member holds an address or name: answered only within a network it proved it is in. */
  private answerMember(from: NodeId, q: Uint8Array): Uint8Array | undefined {
    const query = decodeQuery(q);
    const asker = this.memberships.get(from);
    if (!query) return undefined;
    const what = "ipv4" in query ? query.ipv4 : "router" in query ? `router #${query.router}` : query.name;
    if (!asker || this.networks.isRevoked(from)) {
      this.log("debug", `member lookup from ${from} for ${what}: nothing to say (it proved no membership of our networks)`);
      return undefined;
    }
    const self = this;
    function* known(): Generator<KnownMember> {
      for (const m of self.networks.members) yield { membership: m.membership, cert: m.cert };
      for (const [id, cert] of self.memberCerts) {
        const m = self.memberships.get(id);
        // By name: only the node the network's registry says holds it (one node per name).
        if (m && id !== from && ("ipv4" in query! || "router" in query! || self.networks.nameHolder(m.networkId, m.name) === id)) yield { membership: m, cert };
      }
    }
    const answer = answerQuery(query, [asker.networkId], known(), (net, id) => this.networks.member(net)?.revocations.isRevoked(id) ?? true);
    // Not known here: a relay asks the other relays once for a member's lookup (never for a relay's: one
    // hop), by address or name (router queries count routers per relay and are not passed on).
    const passed = !answer && !("router" in query) && this.config.relay.enabled && !this.router.isRelay(from) && this.forwards.add(query, from) ? this.router.discovery.forwardMemberLookup(q, from) : 0;
    this.log("debug", `member lookup from ${from} for ${what}: ${answer ? "answered" : passed ? `asked ${passed} other relay(s)` : "nothing to say"}`);
    return answer;
  }

  /** A relay named the member holding what we asked: check its certificate, then send what waited. */
  private onMember(from: NodeId, answer: Uint8Array): void {
    let m;
    try {
      m = decodeCertificate(answer).membership;
    } catch {
      return;
    }
    // Answers to lookups we passed on for neighbours go to those of the holder's network (they check it).
    if (this.router.isRelay(from))
      for (const asker of this.forwards.take(m)) if (this.memberships.get(asker)?.networkId === m.networkId) this.router.discovery.sendMemberAnswer(asker, answer);
    if (m.nodeId !== this.id && m.subnets.length && this.routes.wantsRouter(m.nodeId)) return this.onRouter(from, answer);
    if (m.nodeId === this.id || !this.waits.wants(m)) return;
    const r = this.networks.check(m.nodeId, [Buffer.from(answer).toString("base64")]);
    if (typeof r === "string") return this.log("debug", `member answer from ${from} refused: ${r}`);
    this.memberships.set(m.nodeId, r.membership);
    const refused = this.peers.applyClaims(m.nodeId, { name: r.membership.name, ipv4: r.membership.ipv4 });
    if (refused) this.log("warn", `member ${m.nodeId}: ${refused}`);
    this.log("debug", `member lookup: ${r.membership.name}${r.membership.ipv4 ? ` (${r.membership.ipv4})` : ""} is ${m.nodeId}, said ${from}`);
    for (const p of this.waits.answered(r.membership)) this.sendTo(m.nodeId, p);
  }

  /** A relay named a router (a member granted subnets) we asked about: check its certificate, then query it for routes. */
  private onRouter(from: NodeId, answer: Uint8Array): void {
    const m = decodeCertificate(answer).membership;
    const r = this.networks.check(m.nodeId, [Buffer.from(answer).toString("base64")]);
    if (typeof r === "string") return this.log("debug", `router answer from ${from} refused: ${r}`);
    this.memberships.set(m.nodeId, r.membership);
    this.memberCerts.set(m.nodeId, answer);
    this.peers.applyClaims(m.nodeId, { name: r.membership.name, ipv4: r.membership.ipv4 });
    this.routes.addRouter(m.nodeId);
  }

  /** Whether a router can be queried now; if not, start what it takes (its keys, a link). */
  private reachRouter(id: NodeId): boolean {
    const p = this.peers.ensure(id);
    if (p.pub && this.router.hasPath(id)) return true;
    if (!p.pub) this.router.lookup(id);
    this.links.connect(id);
    return false;
  }

  /** A record our relays gave us: a member's public identity lets us start a session through them. */
  private onRecord(r: DiscoveryRecord): void {
    if (r.relay) return;
    // Take the keys only when we wait for them: packets held for this node (by id or by address), or
    // a known peer without keys (an allow-listed one, or one being pinged).
    const byAddress = this.pendingByAddress.get(r.id.slice(0, 20));
    const known = this.peers.get(r.id);
    if (!byAddress && !this.pending.has(r.id) && !(known && !known.pub)) return;
    const pub = recordIdentity(r);
    if (!pub) return;
    this.learn(pub);
    if (byAddress) {
      this.pendingByAddress.delete(r.id.slice(0, 20));
      for (const p of byAddress) this.sendTo(r.id, p);
    }
    this.flushPending();
  }

  /** The session layer hands a sealed packet to the router. */
  private transmit(to: NodeId, packet: Uint8Array): void {
    this.router.send(to, packet);
  }

  /** An end-to-end payload the router delivered to us: a session packet, or a signal through relays. */
  private fromRouter(src: NodeId, inner: Uint8Array): void {
    if (inner[0] !== TYPE_SIGNAL) return this.sessions.receive(inner, src);
    this.log("debug", `signal from ${src} through relays`);
    try {
      this.links.handleSignal(JSON.parse(new TextDecoder().decode(inner.subarray(1))));
    } catch {
      this.log("debug", `dropped a malformed signal from ${src} through the overlay`);
    }
  }

  private deliver(from: NodeId, payload: Uint8Array): void {
    const v = payload[0] >> 4;
    if (v === 4 || v === 6) {
      this.router.active(from);
      const p = this.peers.get(from);
      if (p) p.rxBytes += payload.length;
    }
    this.outside.fromPeer(from, payload);
  }

  private control(from: NodeId, payload: Uint8Array): void {
    if (payload[0] === CONTROL_REVOCATION) {
      this.addRevocation(payload.subarray(1));
      return;
    }
    if (payload[0] === CONTROL_POLICY) {
      this.setPolicy(payload.subarray(1));
      return;
    }
    if (this.routes.control(from, payload)) return;
    const pong = this.prober.receive(from, payload);
    if (pong) {
      const p = this.peers.get(from);
      if (p) p.rttMs = pong.rttMs;
      this.router.setTraceTo(from, pong.trace);
    }
  }

  /** What an allow-listed peer's unsigned IPv4 claim may be (peers.ts checkIpv4Claim). */
  private ipv4Rules(): Ipv4ClaimRules {
    return { prefixes: this.ipv4s, own: this.ipv4s.map((a) => a.address), pinned: new Map(Object.entries(this.config.network.allowIpv4 ?? {}) as [NodeId, string][]) };
  }

  private established(peer: NodeId, remote: PublicIdentity, claims: Uint8Array): void {
    this.learn(remote);
    // A member's name and address come from its signed certificate, never from what it says.
    const m = this.allow.has(peer) ? undefined : this.memberships.get(peer);
    const c = decodeClaims(claims);
    const refused = m ? this.peers.applyClaims(peer, { name: m.name, ipv4: m.ipv4 }) : this.peers.applyClaims(peer, { name: c.name, ipv4: c.ipv4 }, this.ipv4Rules());
    // A default route (the exit right) is not a source right: an exit's packets are checked by routes.ts.
    if (m) this.peers.get(peer)!.subnets = m.subnets.filter((n) => n.prefix > 0).map((n) => ({ family: n.family, prefix: n.prefix, bytes: (n.family === 4 ? parseIpv4(n.address) : parseIpv6(n.address))! }));
    // Tell the new peer every revocation we know, so they spread without a server.
    for (const r of this.networks.revocationRecords()) this.sessions.send(peer, recordMessage(CONTROL_REVOCATION, r));
    for (const r of this.networks.policyRecords()) this.sessions.send(peer, recordMessage(CONTROL_POLICY, r));
    if (refused) this.log("warn", `peer ${peer}: claim refused: ${refused}`);
    const p = this.peers.get(peer)!;
    this.log("info", `session with ${peer}${p.name ? ` (${p.name})` : ""} established${p.ipv4 ? `, ipv4 ${p.ipv4}` : ""}`);
  }

  private tick(): void {
    this.sessions.tick();
    this.router.tick();
    this.routes.tick();
    for (const q of this.waits.pending()) this.router.lookupMember(encodeQuery(q));
    const now = Date.now();
    if (now - this.lastProbe < RTT_PROBE_EVERY_MS) return;
    this.lastProbe = now;
    // End-to-end RTT (and the relays on the way) for peers we talk to; links are probed by the router.
    // Allow-listed peers are retried until we first meet them; after that links open on demand and
    // close when idle.
    for (const p of this.peers.all()) {
      if (this.sessions.isEstablished(p.id)) {
        this.met.add(p.id);
        if (this.router.isActive(p.id)) void this.prober.ping(p.id);
      } else if (this.allow.has(p.id) && !this.met.has(p.id)) {
        // Try a direct link, and meanwhile a session through a relay (keys from the relay's records).
        this.links.connect(p.id);
        if (!p.pub) this.router.lookup(p.id);
        else if (this.router.hasPath(p.id)) this.sessions.send(p.id, new Uint8Array(0));
      }
    }
  }
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : "untried");

export type NodeErrorCode = "unknown-peer";
export class NodeError extends Error {
  constructor(readonly code: NodeErrorCode, message: string) {
    super(message);
    this.name = "NodeError";
  }
}
