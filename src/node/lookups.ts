// Member lookups, the node's side: asking our relays which member holds an IPv4 address or a name
// (packets to it wait meanwhile), answering neighbours who ask us, and taking an answer's certificate.
// The wire form, who may learn what, and the bounded waits are in ./members.ts.
import { formatIpv4, parseIpv4 } from "../identity/address.ts";
import { isNodeId, type NodeId } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import { inPrefix, ipv4KeyOf } from "../datapath/ip.ts";
import type { Peer, PeerTable } from "../datapath/peers.ts";
import type { MemberPort } from "../datapath/ports.ts";
import type { Hold } from "../datapath/hold.ts";
import type { Router } from "../route/router.ts";
import { decodeCertificate } from "../trust/certificate.ts";
import type { Admission } from "./admission.ts";
import { answerQuery, decodeQuery, encodeQuery, MemberForwards, MemberWaits, type KnownMember, type MemberQuery } from "./members.ts";

export interface MemberLookupsOptions {
  self: NodeId;
  /** Whether this node relays (it passes lookups it cannot answer on to the other relays). */
  relaying: boolean;
  admission: Admission;
  peers: PeerTable;
  /** The node's one hold: packets wait there (kind "member", by IPv4 address) for an answer. */
  hold: Hold;
  router: () => Router;
  /** Subnet routes: whether we asked about a router, and taking one. */
  routes: () => { wantsRouter(id: NodeId): boolean; addRouter(id: NodeId): void };
  /** Send a packet that waited for the lookup (the data path's send). */
  send(to: NodeId, packet: Uint8Array): void;
  log: Log;
}

export class MemberLookups implements MemberPort {
  // State, owned by the node's event loop:
  /** People waiting for a member lookup (by IPv4 address or name); packets wait in the hold. */
  private readonly waits: MemberWaits;
  /** Lookups this relay passed on to other relays for its neighbours. */
  private readonly forwards = new MemberForwards();

  constructor(private readonly opts: MemberLookupsOptions) {
    this.waits = new MemberWaits((ipv4) => opts.hold.has("member", ipv4));
  }

  /**
   * A packet to an IPv4 address in one of our networks' prefixes that no known peer holds: hold it
   * (bounded, src/datapath/hold.ts) and ask our relays which member holds the address.
   */
  holdForIpv4(packet: Uint8Array, off: number): boolean {
    const { admission } = this.opts;
    if (admission.networks.members.length === 0) return false;
    const dst = packet.subarray(off, off + 4);
    if (!admission.ipv4s.some((a) => inPrefix(dst, 0, parseIpv4(a.address)!, a.prefix)) || admission.ipv4s.some((a) => ipv4KeyOf(parseIpv4(a.address)!) === ipv4KeyOf(dst))) return false;
    const ipv4 = formatIpv4(dst);
    if (!this.opts.hold.put("member", ipv4, packet.slice())) return true; // refused (the hold is full): dropped and counted
    this.opts.router().lookupMember(encodeQuery({ ipv4 }));
    return true;
  }

  /** Wait (at most `ms`) for our relays to say which member holds an IPv4 address or name (in a network we share). */
  async lookup(q: MemberQuery, ms: number): Promise<void> {
    let query;
    try {
      query = encodeQuery(q);
    } catch {
      return;
    }
    if (this.opts.admission.networks.members.length === 0) return;
    const done = this.waits.wait(q, ms);
    this.opts.router().lookupMember(query);
    await done;
  }

  /**
   * A peer a person named (ping) that we do not know yet: a member of our networks, named by IPv4
   * address or by name (NAME or NAME.NETWORK), asked of our relays, whose answer is a certificate
   * checked against the network's root. A full node id we were never told of is not looked up at all
   * (Node.ping refuses it): a record or a seed's word would make a peer and a link attempt for an
   * identity nobody admitted.
   */
  async find(target: string, timeoutMs: number): Promise<Peer | undefined> {
    const { admission, peers } = this.opts;
    const t = target.trim().toLowerCase();
    if (!admission.networks.members.length || isNodeId(t)) return undefined;
    const [name, network] = t.split(".", 2);
    if (parseIpv4(t)) {
      await this.lookup({ ipv4: t }, timeoutMs / 2);
      return peers.resolve(t);
    }
    if (network && !admission.networks.members.some((m) => m.info.name === network)) return undefined;
    await this.lookup({ name }, timeoutMs / 2);
    return peers.resolve(name);
  }

  /** Ask again for what still waits (every tick; the hold expires what waited too long). */
  tick(): void {
    const router = this.opts.router();
    const asked = new Set<string>();
    for (const ipv4 of this.opts.hold.keys("member")) {
      asked.add(ipv4);
      router.lookupMember(encodeQuery({ ipv4 }));
    }
    for (const q of this.waits.pending()) if (!("ipv4" in q && asked.has(q.ipv4))) router.lookupMember(encodeQuery(q));
  }

  /** A neighbour asks which member holds an address or name: answered only within a network it proved it is in. */
  answer(from: NodeId, q: Uint8Array): Uint8Array | undefined {
    const query = decodeQuery(q);
    const { networks, memberships, memberCerts } = this.opts.admission;
    const asker = memberships.get(from);
    if (!query) return undefined;
    const what = "ipv4" in query ? query.ipv4 : "router" in query ? `router #${query.router}` : query.name;
    if (!asker || networks.isRevoked(from)) {
      this.opts.log("debug", `member lookup from ${from} for ${what}: nothing to say (it proved no membership of our networks)`);
      return undefined;
    }
    function* known(): Generator<KnownMember> {
      for (const m of networks.members) yield { membership: m.membership, cert: m.cert };
      for (const [id, cert] of memberCerts) {
        const m = memberships.get(id);
        // By name: only the node the network's registry says holds it (one node per name).
        if (m && id !== from && ("ipv4" in query! || "router" in query! || networks.nameHolder(m.networkId, m.name) === id)) yield { membership: m, cert };
      }
    }
    const answer = answerQuery(query, [asker.networkId], known(), (net, id) => networks.member(net)?.revocations.isRevoked(id) ?? true);
    // Not known here: a relay asks the other relays once for a member's lookup (never for a relay's: one
    // hop), by address or name (router queries count routers per relay and are not passed on).
    const router = this.opts.router();
    const passed = !answer && !("router" in query) && this.opts.relaying && !router.isRelay(from) && this.forwards.add(query, from) ? router.discovery.forwardMemberLookup(q, from) : 0;
    this.opts.log("debug", `member lookup from ${from} for ${what}: ${answer ? "answered" : passed ? `asked ${passed} other relay(s)` : "nothing to say"}`);
    return answer;
  }

  /** A relay named a router (a member granted subnets) we asked about: check its certificate, then query it for routes. */
  private onRouter(from: NodeId, answer: Uint8Array, id: NodeId): void {
    const { admission, peers } = this.opts;
    const r = admission.networks.check(id, [Buffer.from(answer).toString("base64")]);
    if (typeof r === "string") return this.opts.log("debug", `router answer from ${from} refused: ${r}`);
    admission.memberships.set(id, r.membership);
    admission.memberCerts.set(id, answer);
    peers.applyClaims(id, { name: r.membership.name, ipv4: r.membership.ipv4 });
    this.opts.routes().addRouter(id);
  }

  /** A relay named the member holding what we asked: check its certificate, then send what waited. */
  onAnswer(from: NodeId, answer: Uint8Array): void {
    let m;
    try {
      m = decodeCertificate(answer).membership;
    } catch {
      return;
    }
    // Answers to lookups we passed on for neighbours go to those of the holder's network (they check it).
    const router = this.opts.router();
    if (router.isRelay(from))
      for (const asker of this.forwards.take(m)) if (this.opts.admission.memberships.get(asker)?.networkId === m.networkId) router.discovery.sendMemberAnswer(asker, answer);
    if (m.nodeId !== this.opts.self && m.subnets.length && this.opts.routes().wantsRouter(m.nodeId)) return this.onRouter(from, answer, m.nodeId);
    if (m.nodeId === this.opts.self || !this.waits.wants(m)) return;
    const { admission, peers, log } = this.opts;
    const r = admission.networks.check(m.nodeId, [Buffer.from(answer).toString("base64")]);
    if (typeof r === "string") return log("debug", `member answer from ${from} refused: ${r}`);
    admission.memberships.set(m.nodeId, r.membership);
    const refused = peers.applyClaims(m.nodeId, { name: r.membership.name, ipv4: r.membership.ipv4 });
    if (refused) log("warn", `member ${m.nodeId}: ${refused}`);
    log("debug", `member lookup: ${r.membership.name}${r.membership.ipv4 ? ` (${r.membership.ipv4})` : ""} is ${m.nodeId}, said ${from}`);
    this.waits.answered(r.membership);
    if (r.membership.ipv4) for (const p of this.opts.hold.take("member", r.membership.ipv4)) this.opts.send(m.nodeId, p);
  }
}
