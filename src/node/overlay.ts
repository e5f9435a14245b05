// Messages between nodes that are not IP packets, the node's side: control messages in sessions
// (revocation and policy records, spread to every peer; route queries and adverts, for ./routes.ts;
// pings and pongs, ./control.ts; delivery reports, for the router) and signals that came through
// relays (each costs an ML-DSA verification before anything is known of its sender, so it is budgeted
// per claimed sender, per link and in all, as handshakes are).
import type { NodeId } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import type { PeerTable } from "../datapath/peers.ts";
import { TYPE_REPORT } from "../route/frame.ts";
import type { Router } from "../route/router.ts";
import { type CheckBudget, TokenBuckets } from "../session/ratelimit.ts";
import type { Sessions } from "../session/sessions.ts";
import type { Links } from "../tether/links.ts";
import type { Admission } from "./admission.ts";
import { CONTROL_POLICY, CONTROL_REVOCATION, type Prober, recordMessage } from "./control.ts";
import type { Routes } from "./routes.ts";

/** Signals through relays verified per second: per claimed sender on a link, per link, in all. */
const SIGNALS_PER_SECOND_PER_SOURCE = 4, SIGNALS_PER_SECOND_PER_LINK = 10, SIGNALS_PER_SECOND_TOTAL = 40;

export interface OverlayOptions {
  admission: Admission;
  peers: PeerTable;
  sessions: Sessions;
  links: Links;
  router: Router;
  routes: Routes;
  prober: Prober;
  /** Signature checks of records, budgeted (shared with the router's discovery records). */
  checks: CheckBudget;
  log: Log;
}

export class Overlay {
  // State, owned by the node's event loop:
  private readonly signalBudget = new TokenBuckets(SIGNALS_PER_SECOND_PER_SOURCE, SIGNALS_PER_SECOND_PER_LINK, SIGNALS_PER_SECOND_TOTAL, () => performance.now());

  constructor(private readonly o: OverlayOptions) {}

  /** An overlay control message in a session: a revocation or policy record, a route message, a ping or pong. */
  control(from: NodeId, payload: Uint8Array): void {
    const { router, routes, prober, peers, admission, checks } = this.o;
    if (payload[0] === TYPE_REPORT) return router.sealedReport(from, payload);
    if (payload[0] === CONTROL_REVOCATION || payload[0] === CONTROL_POLICY) {
      // A new record costs a signature check: within the peer's budget (re-sent ones cost nothing).
      const rec = payload.subarray(1), revocation = payload[0] === CONTROL_REVOCATION;
      if (admission.networks.known(revocation ? "revocation" : "policy", rec)) return;
      const key = revocation ? `revocation ${Buffer.from(rec.subarray(20, 36)).toString("hex")}` : `policy ${Buffer.from(rec.subarray(4, 20)).toString("hex")}`;
      checks.run(from, key, key, () => (revocation ? this.addRevocation(rec) : this.setPolicy(rec)));
      return;
    }
    if (routes.control(from, payload)) return;
    const pong = prober.receive(from, payload);
    if (pong) {
      const p = peers.get(from);
      if (p) p.rttMs = pong.rttMs;
      router.setTraceTo(from, pong.trace);
    }
  }

  /** A signal that came through relays (not a seed), claimed from `from`, on the link to `link`: for the link manager. */
  signal(from: NodeId, envelope: Uint8Array, link: NodeId = from): void {
    const { log, links } = this.o;
    if (!this.signalBudget.take(link, from)) return log("debug", `signal from ${from} through relays (link ${link}): over budget, dropped`);
    log("debug", `signal from ${from} through relays`);
    try {
      links.handleSignal(JSON.parse(new TextDecoder().decode(envelope)));
    } catch {
      log("debug", `dropped a malformed signal from ${from} through the overlay`);
    }
  }

  /** A policy record from the API or a peer: install it when newer, and pass it on. Returns its version. */
  setPolicy(record: Uint8Array): number | undefined {
    const { admission, peers, sessions, log } = this.o;
    const r = admission.networks.setPolicy(record);
    if (!r) return;
    log("info", `policy version ${r.version} of network ${r.network} installed; passing it on`);
    for (const p of peers.all()) if (sessions.isEstablished(p.id)) sessions.send(p.id, recordMessage(CONTROL_POLICY, record));
    return r.version;
  }

  /** A revocation record from the API or a peer: store it, cut the revoked node off, pass it on. */
  addRevocation(record: Uint8Array): string | undefined {
    const { admission, peers, sessions, links, log } = this.o;
    const rev = admission.revoke(record);
    if (!rev) return;
    log("info", `revocation of ${rev.nodeId}${rev.reason ? ` (${rev.reason})` : ""} accepted; closing its session and passing it on`);
    if (rev.cutOff) {
      sessions.close(rev.nodeId, "revoked");
      links.disconnect(rev.nodeId, "revoked");
    }
    for (const p of peers.all()) if (p.id !== rev.nodeId && sessions.isEstablished(p.id)) sessions.send(p.id, recordMessage(CONTROL_REVOCATION, record));
    return rev.nodeId;
  }

  /** A new session: tell the peer every revocation and policy we know, so they spread without a server. */
  greet(peer: NodeId): void {
    const { admission, sessions } = this.o;
    for (const r of admission.networks.revocationRecords()) sessions.send(peer, recordMessage(CONTROL_REVOCATION, r));
    for (const r of admission.networks.policyRecords()) sessions.send(peer, recordMessage(CONTROL_POLICY, r));
  }
}
