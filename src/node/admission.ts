// Who may talk to this node: the allow-list, our networks' certificates, revocations and policy (the
// firewall the data path asks), and what we and our peers claim in handshakes.
//
// A node id in [network] allow may talk to us; so may a node that shows a valid, unexpired, unrevoked
// certificate of a network we are in. A member's name, IPv4 address and subnets come from its signed
// certificate, never from what it says; an allow-listed node's from its (encrypted) claims.
import { ipv6BytesOf, parseIpv4, parseIpv6 } from "../identity/address.ts";
import type { NodeId, PublicIdentity } from "../identity/identity.ts";
import type { Config } from "../config/schema.ts";
import { decodeCertificate, type Membership } from "../trust/certificate.ts";
import { createHash } from "node:crypto";
import { Networks } from "../trust/networks.ts";
import { logger, type Log } from "../log.ts";
import { decodeClaims, encodeClaims, type Claims, type Ipv4ClaimRules } from "../datapath/peers.ts";
import type { PolicyPort } from "../datapath/ports.ts";
import { certFor } from "./members.ts";

export interface Ipv4Address {
  address: string;
  prefix: number;
}

/**
 * How long a certificate that failed a check is refused without another check (keyed by the sender and
 * the certificates shown: someone else's forgery in a member's name must not shut the member out), and
 * how many such refusals are remembered.
 */
const REFUSED_MS = 60_000, MAX_REFUSED = 4096;

export class Admission implements PolicyPort {
  // State, owned by the node's event loop (every call comes from it):
  /** [network] allow, replaced on reload. */
  allow: Set<NodeId>;
  /** Our networks and certificates (from the state directory), re-read on reload. */
  networks: Networks;
  /** Memberships peers proved, by node id (their names and IPv4 addresses are signed there). */
  readonly memberships = new Map<NodeId, Membership>();
  /** The certificates members proved to us (links and sessions), to answer member lookups (./lookups.ts). */
  readonly memberCerts = new Map<NodeId, Uint8Array>();
  /** What we claim in handshakes: without and with our certificates (see makeClaims). */
  claims: { plain: Uint8Array; full: Uint8Array };
  /** Our IPv4 addresses: one per network from its certificate (signed), else [node] ipv4. The first is primary. */
  readonly ipv4s: Ipv4Address[];

  constructor(private readonly config: Config, private readonly self: NodeId, private readonly log: Log = logger("trust")) {
    this.allow = new Set(config.network.allow as NodeId[]);
    this.networks = this.loadNetworks();
    const signed = this.networks.members.flatMap((m) => (m.membership.ipv4 ? [{ address: m.membership.ipv4, prefix: m.membership.ipv4Prefix }] : []));
    this.ipv4s = signed.length ? signed : config.node.ipv4 ? [config.node.ipv4] : [];
    this.claims = this.makeClaims();
  }

  /** Read our networks and certificates from the state directory, logging what we are a member of. */
  loadNetworks(): Networks {
    const networks = new Networks(this.config.node.stateDir, this.self, this.log);
    for (const m of networks.members) {
      this.log("info", `member of network ${m.info.name} (${m.info.id}) as ${m.membership.name}${m.membership.ipv4 ? `, ${m.membership.ipv4}` : ""}, certificate valid until ${new Date(m.membership.notAfter * 1000).toISOString()}`);
      if (Date.now() / 1000 > m.membership.notAfter) this.log("warn", `our certificate for network ${m.info.name} expired: peers will refuse us`);
    }
    return networks;
  }

  /** Claims travel encrypted in the handshake: name, IPv4, and our certificates. */
  private makeClaims(): { plain: Uint8Array; full: Uint8Array } {
    const ipv4 = this.ipv4s[0]?.address;
    const plain = encodeClaims({ name: this.config.node.name, ipv4 });
    const certs = this.networks.proofs();
    return { plain, full: certs.length ? encodeClaims({ name: this.config.node.name, ipv4, certs }) : plain };
  }

  /**
   * Certificates re-read on reload: a renewed one is presented from the next handshake on. Returns the
   * new claims, or undefined when the certificates' addresses changed (that needs a restart).
   */
  reloadNetworks(): Uint8Array | undefined {
    const networks = this.loadNetworks();
    const ipv4s = networks.members.flatMap((m) => (m.membership.ipv4 ? [m.membership.ipv4] : []));
    if (ipv4s.length && ipv4s.join() !== this.ipv4s.map((a) => a.address).join()) {
      this.log("warn", `reload: the certificates' IPv4 addresses are now ${ipv4s.join(", ")}; restart the node to use them`);
      return undefined;
    }
    this.networks = networks;
    this.claims = this.makeClaims();
    return this.claims.full;
  }

  /** The claims to answer a handshake with: certificates only to peers that sent theirs (a response never outgrows the initiation). */
  responseClaims(theirs: Uint8Array): Uint8Array {
    return decodeClaims(theirs).certs?.length ? this.claims.full : this.claims.plain;
  }

  /**
   * Who may talk to this node, checked at signalling and again inside the handshake: a node id in
   * [network] allow, or a node that shows a valid, unexpired, unrevoked certificate of a network this
   * node is in. The reason for a refusal is logged by the caller.
   */
  admit(remote: PublicIdentity, certs: string[] = []): true | string {
    if (remote.id === this.self) return "that is this node's own id";
    if (this.allow.has(remote.id)) return true;
    if (this.networks.members.length === 0) return `node ${remote.id} is not in [network] allow`;
    // A router (an exit) believes a node in several of its networks as a member of one whose root
    // granted it rights, if any: that membership is what lets it use them (routes.ts mayUseExit, mayReach).
    const router = this.config.routes.exit || this.config.routes.advertise.length > 0;
    // The very certificate we verified for it before (signal, then link, then handshake): not again.
    if (this.known(remote.id, Date.now() / 1000, certs)) return true;
    const r = this.networks.check(remote.id, certs, undefined, router ? (m) => m.membership.subnets.length > 0 : undefined);
    if (typeof r === "string") return `node ${remote.id} is not in [network] allow and not a member: ${r}`;
    this.memberships.set(remote.id, r.membership);
    const cert = certFor(certs, r.membership.networkId, remote.id);
    if (cert) this.memberCerts.set(remote.id, cert);
    return true;
  }

  /** Certificates that failed a check lately (screen's negative cache): sender and digest of what it showed → when (ms). */
  private readonly refused = new Map<string, number>();

  private static refusalKey(from: NodeId, certs: string[]): string {
    return `${from} ${createHash("sha256").update(certs.slice(0, 4).join(",")).digest("base64")}`;
  }

  /**
   * Whether a signal (or anything else) claimed from `from`, presenting `certs`, may cost a signature
   * check, decided from what we hold before any: an allow-listed node, or a member whose certificate
   * we verified (still within its dates, not revoked), may. An unknown sender may only when it presents
   * a certificate of one of our networks that names it and is within its dates, read without checking
   * its signature; that certificate is then checked (one or two signatures, once: a refusal is
   * remembered for REFUSED_MS). Anyone else costs nothing: the reason is returned.
   */
  screen(from: NodeId, certs: string[], now = Date.now()): true | string {
    const v = this.vet(from, certs, now);
    if (v !== false) return v;
    const r = this.admit({ id: from } as PublicIdentity, certs);
    if (r === true) return true;
    if (this.refused.size >= MAX_REFUSED) this.refused.delete(this.refused.keys().next().value!);
    this.refused.set(Admission.refusalKey(from, certs), now);
    this.log("info", r);
    return r;
  }

  /** screen() without its one check: true (known), false (a plausible certificate, unchecked), or why not. */
  vet(from: NodeId, certs: string[], now = Date.now()): boolean | string {
    if (from === this.self) return "that is this node's own id";
    if (this.allow.has(from)) return true;
    if (this.networks.members.length === 0) return `node ${from} is not in [network] allow`;
    if (this.known(from, now / 1000)) return true;
    const t = now / 1000;
    const at = certs.length ? this.refused.get(Admission.refusalKey(from, certs)) : undefined;
    if (at !== undefined && now - at < REFUSED_MS) return `node ${from} showed this certificate ${Math.round((now - at) / 1000)} s ago and it failed its check`;
    // Read, not verified: the reasons are those networks.check would give, without its signature checks.
    let why = `node ${from} shows no certificate of a network this node is in`, plausible = false;
    for (const c of certs.slice(0, 4)) {
      let x: Membership;
      try {
        x = decodeCertificate(Uint8Array.from(Buffer.from(c, "base64"))).membership;
      } catch (e) {
        why = (e as Error).message;
        continue;
      }
      const net = this.networks.member(x.networkId);
      if (!net) continue;
      if (x.nodeId !== from) why = `certificate names node ${x.nodeId}, not ${from}`;
      else if (net.revocations.isRevoked(from)) why = `node ${from} is revoked in network ${net.info.name}`;
      else if (t > x.notAfter) why = `certificate for ${x.name} expired ${new Date(x.notAfter * 1000).toISOString()}`;
      else if (t < x.notBefore) why = `certificate for ${x.name} is valid from ${new Date(x.notBefore * 1000).toISOString()}`;
      else plausible = true;
    }
    return plausible ? false : `node ${from} is not in [network] allow and not a member: ${why}`;
  }

  /** A member whose certificate we verified: within its dates, not revoked, and still holding its name here. */
  private known(id: NodeId, t: number, certs?: string[]): boolean {
    const m = this.memberships.get(id);
    if (!m || t < m.notBefore || t > m.notAfter || this.networks.member(m.networkId)?.revocations.isRevoked(id) !== false) return false;
    if (this.networks.nameHolder(m.networkId, m.name, t) !== id) return false;
    if (!certs) return true;
    const held = this.memberCerts.get(id);
    return held !== undefined && certs.slice(0, 4).some((c) => c.length === Math.ceil(held.length / 3) * 4 && Buffer.from(held).toString("base64") === c);
  }

  /**
   * The certificate we verified for `id`, to pass on with its record to the neighbour `to`: only when
   * `to` proved membership of the same network (who may learn a member's certificate: ./members.ts).
   */
  certToPass(id: NodeId, to: NodeId): Uint8Array | undefined {
    const m = this.memberships.get(id), t = this.memberships.get(to);
    return m && t && m.networkId === t.networkId ? this.memberCerts.get(id) : undefined;
  }

  /** admit() for links, plus a relay's limit on how many peers it serves. */
  admitLink(remote: PublicIdentity, certs: string[], links: { link(id: NodeId): unknown; readonly count: number }): true | string {
    const c = this.config.relay;
    if (c.enabled && !links.link(remote.id) && links.count >= c.maxPeers) return `relay is full ([relay] max_peers = ${c.maxPeers})`;
    return this.admit(remote, certs);
  }

  /** The firewall that applies to traffic with `peer`: its network's, when it is a member by certificate. */
  private firewallFor(peer: NodeId) {
    const m = this.allow.has(peer) ? undefined : this.memberships.get(peer);
    if (!m) return undefined;
    const member = this.networks.member(m.networkId);
    return member?.firewall ? { fw: member.firewall, theirTags: m.tags, ourTags: member.membership.tags } : undefined;
  }

  outbound(to: NodeId, packet: Uint8Array): void {
    this.firewallFor(to)?.fw.outbound(to, packet);
  }

  inbound(from: NodeId, packet: Uint8Array): boolean {
    const f = this.firewallFor(from);
    return !f || f.fw.inbound(from, f.theirTags, f.ourTags, packet);
  }

  lookupsAllowed(): boolean {
    return this.networks.members.length > 0;
  }

  /**
   * The certificates a peer showed in the handshake that set up our session with it. The responder's
   * come in its response, which the session layer does not check (we chose to talk to it): without
   * this, a member that renewed its certificate kept the name we had from elsewhere (a relay's copy of
   * the old one) when we were the one who started the handshake. A valid certificate is taken as admit()
   * takes one; anything else changes nothing (what we verified before stays).
   */
  takeCertificates(remote: PublicIdentity, claims: Uint8Array): void {
    if (this.allow.has(remote.id)) return;
    let certs: string[] | undefined;
    try {
      certs = decodeClaims(claims).certs;
    } catch {
      return;
    }
    if (!certs?.length) return;
    const r = this.admit(remote, certs);
    if (r !== true) this.log("debug", `handshake certificates of ${remote.id} not taken: ${r}`);
  }

  /**
   * What to believe about a peer whose session came up: a member's name, address and subnets from its
   * certificate; an allow-listed node's name and address from its claims.
   */
  believe(peer: NodeId, claims: Uint8Array): { claims: Claims; rules?: Ipv4ClaimRules; subnets?: { family: 4 | 6; prefix: number; bytes: Uint8Array }[] } {
    const m = this.allow.has(peer) ? undefined : this.memberships.get(peer);
    if (!m) {
      const c = decodeClaims(claims);
      return { claims: { name: c.name, ipv4: c.ipv4 }, rules: this.ipv4Rules() };
    }
    return {
      claims: { name: m.name, ipv4: m.ipv4 },
      // A default route (the exit right) is not a source right: an exit's packets are checked by routes.ts.
      subnets: m.subnets.filter((n) => n.prefix > 0).map((n) => ({ family: n.family, prefix: n.prefix, bytes: (n.family === 4 ? parseIpv4(n.address) : parseIpv6(n.address))! })),
    };
  }

  /** What an allow-listed peer's unsigned IPv4 claim may be (src/datapath/peers.ts checkIpv4Claim). */
  ipv4Rules(): Ipv4ClaimRules {
    return { prefixes: this.ipv4s, own: this.ipv4s.map((a) => a.address), pinned: new Map(Object.entries(this.config.network.allowIpv4 ?? {}) as [NodeId, string][]) };
  }

  /** A revocation record: stored; returns the revoked node, and whether it loses its session (not allow-listed). */
  revoke(record: Uint8Array): { nodeId: NodeId; reason?: string; cutOff: boolean } | undefined {
    const rev = this.networks.addRevocation(record);
    if (!rev) return;
    const cutOff = !this.allow.has(rev.nodeId);
    if (cutOff) {
      this.memberships.delete(rev.nodeId);
      this.memberCerts.delete(rev.nodeId);
    }
    return { nodeId: rev.nodeId, reason: rev.reason, cutOff };
  }

  /** NAME.NETWORK for DNS: our own name, or the member holding it that we met; its addresses of `type`. */
  dnsLookup(name: string, type: "a" | "aaaa"): Uint8Array[] | undefined {
    const dot = name.lastIndexOf(".");
    const [host, network] = [name.slice(0, dot), name.slice(dot + 1)];
    const member = this.networks.members.find((m) => m.info.name === network);
    if (!member || dot < 1) return undefined;
    let v6: Uint8Array | undefined, v4: string | undefined;
    // One node per name: the holder the network's registry settled on (trust/registry.ts), not whoever we met last.
    const holder = this.networks.nameHolder(member.info.id, host);
    const m = holder === this.self ? member.membership : holder ? this.memberships.get(holder) : undefined;
    if (holder && m?.networkId === member.info.id && m.name === host) [v6, v4] = [ipv6BytesOf(holder), m.ipv4];
    if (!v6) return undefined;
    return type === "aaaa" ? [v6] : v4 ? [parseIpv4(v4)!] : [];
  }
}
