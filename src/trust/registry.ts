// Who holds what in one network, as this node has seen it: each name belongs to one node, each invite to one node.
//
// Names: the first certificate seen for a name keeps it, except that a root-signed certificate beats
// one signed through an invite, and between two of the same kind the one valid from earlier wins (an
// invite-signed certificate's start is bounded below by its grant's issue time, so it cannot claim to
// predate the invite; version 1 grants carry no issue time and never displace anyone).
// Invites: an enrolment key signs exactly one certificate. The first certificate from an invite this
// node accepts holds it until it expires or its node is revoked (a root-signed statement); any other
// node's certificate from the same key is refused, whatever its dates. Dates cannot rank two
// certificates from one invite: the token carries the enrolment key, so whoever holds a copy of it,
// even long after it was redeemed, can sign a certificate dated the earliest start members accept,
// and a rule "the earlier one wins" let such a copy evict the node that redeemed the invite at every
// member. Both bindings are kept in a file in the network's state directory so a restart does not
// forget them. See docs/PROTOCOL.md, "Names and invites".
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { NodeId } from "../identity/identity.ts";
import type { Membership } from "./certificate.ts";
import { decodeEnrolment, sha256hex } from "./enrolment.ts";

interface NameHolder {
  node: NodeId;
  /** Root-signed (not through an invite). */
  root: boolean;
  /** Whether notBefore can be trusted for ordering (root-signed, or bounded by a version 2 grant). */
  dated: boolean;
  notBefore: number;
  notAfter: number;
}

interface InviteHolder {
  node: NodeId;
  notAfter: number;
}

/** displaced: the node that held the name. */
export type Claim = { ok: true; displaced?: NodeId } | { ok: false; why: string };

export class Registry {
  private readonly names = new Map<string, NameHolder>();
  private readonly invites = new Map<string, InviteHolder>();

  constructor(private readonly file?: string) {
    if (!file || !existsSync(file)) return;
    try {
      const v = JSON.parse(readFileSync(file, "utf8"));
      for (const [k, h] of Object.entries(v.names ?? {})) this.names.set(k, h as NameHolder);
      for (const [k, h] of Object.entries(v.invites ?? {})) this.invites.set(k, h as InviteHolder);
    } catch {} // a damaged file only loses what we remembered
  }

  /**
   * Record that `m` (a verified certificate) names its node, or say why another node holds its name or
   * its invite. `gone` says whether a recorded holder is revoked (then it holds nothing).
   */
  claim(m: Membership, now: number, gone: (id: NodeId) => boolean = () => false): Claim {
    let invite: string | undefined, dated = !m.enrolment;
    if (m.enrolment) {
      const e = decodeEnrolment(m.enrolment).enrolment;
      invite = sha256hex(e.publicKey);
      dated = e.issuedAt > 0;
      const h = this.invites.get(invite);
      // The invite's holder keeps it, whatever the newcomer's dates say (anyone with the token can date one).
      if (h && h.node !== m.nodeId && h.notAfter >= now && !gone(h.node))
        return { ok: false, why: `node ${m.nodeId} shows a certificate from an invite node ${h.node} already used (one invite, one certificate): refused` };
    }
    const mine: NameHolder = { node: m.nodeId, root: !m.enrolment, dated, notBefore: m.notBefore, notAfter: m.notAfter };
    const h = this.names.get(m.name);
    let displaced: NodeId | undefined;
    if (h && h.node !== m.nodeId && h.notAfter >= now && !gone(h.node)) {
      const wins = (mine.root && !h.root) || (mine.root === h.root && mine.dated && h.dated && mine.notBefore < h.notBefore);
      if (!wins) return { ok: false, why: `node ${m.nodeId} claims the name ${m.name}, which node ${h.node} holds${h.root ? " by a root-signed certificate" : ""}: refused` };
      displaced = h.node;
    }
    let changed = false;
    if (!h || h.node !== m.nodeId || h.notAfter !== m.notAfter) {
      for (const [name, o] of this.names) if (o.node === m.nodeId && name !== m.name) this.names.delete(name); // one name per node
      this.names.set(m.name, mine);
      changed = true;
    }
    if (invite && this.invites.get(invite)?.node !== m.nodeId) {
      this.invites.set(invite, { node: m.nodeId, notAfter: m.notAfter });
      changed = true;
    }
    if (changed) this.save(now);
    return { ok: true, ...(displaced ? { displaced } : {}) };
  }

  /** The node that holds `name`, if any. */
  holder(name: string, now: number, gone: (id: NodeId) => boolean = () => false): NodeId | undefined {
    const h = this.names.get(name);
    return h && h.notAfter >= now && !gone(h.node) ? h.node : undefined;
  }

  private save(now: number): void {
    if (!this.file) return;
    for (const [k, h] of this.names) if (h.notAfter < now) this.names.delete(k);
    for (const [k, h] of this.invites) if (h.notAfter < now) this.invites.delete(k);
    try {
      writeFileSync(this.file, JSON.stringify({ names: Object.fromEntries(this.names), invites: Object.fromEntries(this.invites) }) + "\n", { mode: 0o600 });
    } catch {} // read-only state: we still decide from memory
  }
}
