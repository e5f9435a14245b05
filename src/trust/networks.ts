// The networks this node belongs to: its root-signed certificates, each network's root key and
// revocations, kept in <state_dir>/networks/<network id>/. Checks the certificates peers present.
import type { Log } from "../log.ts";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NodeId } from "../identity/identity.ts";
import { decodeCertificate, verifyCertificate, type Membership } from "./certificate.ts";
import { TrustError } from "./errors.ts";
import { decodeNetworkInfo, encodeNetworkInfo, type NetworkInfo } from "./root.ts";
import { RevocationSet, type Revocation } from "./revocation.ts";
import { Firewall, verifyPolicy } from "./policy.ts";
import { Registry } from "./registry.ts";

export interface Member {
  info: NetworkInfo;
  cert: Uint8Array;
  membership: Membership;
  revocations: RevocationSet;
  /** The network's tag policy enforced on receive; none means every member reaches every member. */
  firewall?: Firewall;
  policyRecord?: Uint8Array;
  /** Which node holds each name and each invite in this network, as far as we have seen. */
  registry: Registry;
}

/** What `trellis sign` prints and `trellis join --install` takes: the network and the certificate. */
export const CERT_BUNDLE_PREFIX = "trellis-cert1:";

export function encodeBundle(info: NetworkInfo, cert: Uint8Array): string {
  return CERT_BUNDLE_PREFIX + Buffer.from(JSON.stringify({ network: JSON.parse(encodeNetworkInfo(info)), cert: Buffer.from(cert).toString("base64") })).toString("base64url");
}

export function decodeBundle(s: string): { info: NetworkInfo; cert: Uint8Array } {
  const t = s.trim();
  if (!t.startsWith(CERT_BUNDLE_PREFIX)) throw new TrustError("malformed", `a certificate starts with ${CERT_BUNDLE_PREFIX}`);
  try {
    const v = JSON.parse(Buffer.from(t.slice(CERT_BUNDLE_PREFIX.length), "base64url").toString());
    return { info: decodeNetworkInfo(JSON.stringify(v.network), "certificate"), cert: Uint8Array.from(Buffer.from(v.cert, "base64")) };
  } catch (e) {
    if (e instanceof TrustError) throw e;
    throw new TrustError("malformed", "the certificate text is damaged (copy it again, whole)");
  }
}

export class Networks {
  readonly members: Member[] = [];

  constructor(private readonly stateDir: string, private readonly self: NodeId, private readonly log: Log = () => {}) {
    const dir = join(stateDir, "networks");
    if (!existsSync(dir)) return;
    for (const id of readdirSync(dir)) {
      try {
        const info = decodeNetworkInfo(readFileSync(join(dir, id, "network.json"), "utf8"), join(dir, id, "network.json"));
        const cert = Uint8Array.from(Buffer.from(readFileSync(join(dir, id, "member.cert"), "utf8").trim(), "base64"));
        const membership = decodeCertificate(cert).membership;
        verifyCertificate(cert, info.rootPub, info.id, self, membership.notAfter - 1);
        const revocations = new RevocationSet(join(dir, id, "revoked"), info.rootPub, info.id);
        const registry = new Registry(join(dir, id, "held.json"));
        registry.claim(membership, Date.now() / 1000); // our own name and invite
        const member: Member = { info, cert, membership, revocations, registry };
        const policyFile = join(dir, id, "policy.rec");
        if (existsSync(policyFile)) {
          const rec = Uint8Array.from(Buffer.from(readFileSync(policyFile, "utf8").trim(), "base64"));
          member.firewall = new Firewall(verifyPolicy(rec, info.rootPub, info.id));
          member.policyRecord = rec;
        }
        this.members.push(member);
      } catch (e) {
        log("warn", `network ${id}: not loaded: ${(e as Error).message}`);
      }
    }
  }

  /** Verify a certificate for this node and store it with its network (join --install). */
  static install(stateDir: string, self: NodeId, bundle: string): Membership {
    const { info, cert } = decodeBundle(bundle);
    const m = verifyCertificate(cert, info.rootPub, info.id, self);
    const dir = join(stateDir, "networks", info.id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, "network.json"), encodeNetworkInfo(info) + "\n");
    writeFileSync(join(dir, "member.cert"), Buffer.from(cert).toString("base64") + "\n");
    return m;
  }

  /** Our certificates, to present in handshakes and signals (expired ones too: the peer's log then says why). */
  proofs(): string[] {
    return this.members.map((m) => Buffer.from(m.cert).toString("base64"));
  }

  /** The membership a peer proves with one of `certs` in a network we share (a `prefer`red network first), or why not. */
  check(remote: NodeId, certs: string[], now = Date.now() / 1000, prefer: (m: Member) => boolean = () => false): { member: Member; membership: Membership } | string {
    if (this.members.length === 0) return "this node is in no network";
    const reasons: string[] = [];
    const decoded = certs.slice(0, 4).flatMap((c) => {
      try {
        return [Uint8Array.from(Buffer.from(c, "base64"))];
      } catch {
        return [];
      }
    });
    // Our networks in order, `prefer`red ones first: a node in two of them is believed as a member of
    // the first where its certificate holds (another network's certificate fails at once, unverified).
    for (const member of [...this.members.filter(prefer), ...this.members.filter((m) => !prefer(m))]) {
      for (const bytes of decoded) {
        try {
          const m = verifyCertificate(bytes, member.info.rootPub, member.info.id, remote, now);
          if (member.revocations.isRevoked(remote)) throw new TrustError("revoked", `node ${remote} is revoked in network ${member.info.name}`);
          // One name per node and one certificate per invite, as far as this node has seen.
          const claim = member.registry.claim(m, now, (id) => member.revocations.isRevoked(id));
          if (!claim.ok) throw new TrustError("constraint", `network ${member.info.name}: ${claim.why}`);
          if (claim.displaced) this.log("warn", `network ${member.info.name}: name ${m.name} moves from node ${claim.displaced} to node ${remote}, whose certificate ranks first (root-signed, or valid from earlier)`);
          return { member, membership: m };
        } catch (e) {
          if (e instanceof TrustError && e.code !== "wrong-network") reasons.push(e.message);
        }
      }
    }
    return reasons[0] ?? `node ${remote} shows no certificate of a network this node is in`;
  }

  /** A revocation record from anyone: stored when it verifies for one of our networks. */
  addRevocation(record: Uint8Array): Revocation | undefined {
    for (const m of this.members) {
      try {
        return m.revocations.add(record);
      } catch {}
    }
    return undefined;
  }

  /**
   * Whether a revocation or policy record would teach us nothing, read without checking a signature: a
   * revocation of a node we hold one for, a policy not newer than the one we run (re-sent records are
   * free), anything for a network we are not in.
   */
  known(kind: "revocation" | "policy", record: Uint8Array): boolean {
    if (record.length < 36) return false;
    const network = Buffer.from(record.subarray(4, 20)).toString("hex");
    const m = this.members.find((x) => x.info.id === network);
    if (!m) return true;
    if (kind === "revocation") return m.revocations.isRevoked(Buffer.from(record.subarray(20, 36)).toString("hex") as NodeId);
    return m.firewall !== undefined && Number(Buffer.from(record).readBigUInt64BE(20)) <= m.firewall.policy.version;
  }

  /** A policy record from anyone: installed (and stored) when it verifies and is newer. Returns its version. */
  setPolicy(record: Uint8Array): { network: string; version: number } | undefined {
    for (const m of this.members) {
      // Not newer than what we run (read before any signature check: re-sent policies cost nothing).
      if (m.firewall && record.length >= 28 && Buffer.from(record.subarray(4, 20)).toString("hex") === m.info.id && Number(Buffer.from(record).readBigUInt64BE(20)) <= m.firewall.policy.version) return;
      let p;
      try {
        p = verifyPolicy(record, m.info.rootPub, m.info.id);
      } catch {
        continue;
      }
      if (m.firewall && m.firewall.policy.version >= p.version) return;
      m.firewall = new Firewall(p);
      m.policyRecord = record;
      writeFileSync(join(this.stateDir, "networks", m.info.id, "policy.rec"), Buffer.from(record).toString("base64") + "\n");
      return { network: m.info.name, version: p.version };
    }
    return undefined;
  }

  policyRecords(): Uint8Array[] {
    return this.members.flatMap((m) => (m.policyRecord ? [m.policyRecord] : []));
  }

  /** The node that holds `name` in a network (ourselves included), by the rules in registry.ts. */
  nameHolder(networkId: string, name: string, now = Date.now() / 1000): NodeId | undefined {
    const m = this.member(networkId);
    return m?.registry.holder(name, now, (id) => m.revocations.isRevoked(id));
  }

  member(networkId: string): Member | undefined {
    return this.members.find((m) => m.info.id === networkId);
  }

  revocationRecords(): Uint8Array[] {
    return this.members.flatMap((m) => m.revocations.records());
  }

  isRevoked(id: NodeId): boolean {
    return this.members.some((m) => m.revocations.isRevoked(id));
  }
}
