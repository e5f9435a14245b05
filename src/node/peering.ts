// Peering: the node's links and sessions with other nodes. A link that opens is handed to the router
// and, for a peer we mean to talk to, starts the session (one side only: the lower id, the other when
// none came); a session that is established gets the peer's claims checked (./admission.ts) and every
// trust record we know (./overlay.ts); allow-listed peers are retried until first met; peers we talk
// to are pinged end to end for their RTT and the relays on the way.
import type { NodeId, PublicIdentity } from "../identity/identity.ts";
import type { Log } from "../log.ts";
import type { Inside } from "../datapath/inside.ts";
import type { PeerTable } from "../datapath/peers.ts";
import type { Router } from "../route/router.ts";
import type { Sessions } from "../session/sessions.ts";
import type { Links } from "../tether/links.ts";
import type { Link } from "../tether/webrtc.ts";
import type { Admission } from "./admission.ts";
import type { Prober } from "./control.ts";
import type { Overlay } from "./overlay.ts";

/** How often peers we talk to are pinged end to end, and unmet allow-listed peers retried. */
const RTT_PROBE_EVERY_MS = 5000;
/**
 * The higher id starts the session on a new link when no handshake came within this long: 200 ms for a
 * peer we sent to lately (what we held for it may have expired), 2 s for an idle allow-listed one. The
 * longer wait covers a loaded lower id: making an initiation is ~25 ms of ML-DSA idle and a second or
 * more on a relay or member in a crowd, and at 200 ms both sides made one (two full handshakes each).
 */
const START_LATER_MS = 200;
const START_LATER_IDLE_MS = 2_000;

export interface PeeringOptions {
  self: NodeId;
  /** A relay retries no allow-listed member in the background: they link to it, and most of a thousand may be offline. */
  relaying: boolean;
  admission: Admission;
  peers: PeerTable;
  sessions: Sessions;
  links: Links;
  router: Router;
  inside: Inside;
  prober: Prober;
  overlay: Overlay;
  log: Log;
}

export class Peering {
  // State, owned by the node's event loop:
  /** Peers we mean to talk to a link opened to, whose session we start if they have not by then (linked()). */
  private readonly startLater = new Map<NodeId, number>();
  /** Allow-listed peers we have had a session with (no longer retried in the background). */
  private readonly met = new Set<NodeId>();
  private lastProbe = 0;

  constructor(private readonly o: PeeringOptions) {}

  /** A peer's public identity (from its link, a record, or its session): needed for a handshake to it. */
  learn(remote: PublicIdentity): void {
    this.o.peers.ensure(remote.id).pub = remote;
    this.o.sessions.learn(remote);
  }

  /** A link to `remote` opened: the router takes what it carries. */
  linked(link: Link, remote: PublicIdentity): void {
    const { router, log, inside, sessions, admission } = this.o;
    this.learn(remote);
    log("info", `link to ${remote.id} open`);
    const receive = router.receive.bind(router, link.peer);
    link.onPacket(receive);
    link.onPackets?.(router.receiveBatch.bind(router, link.peer));
    link.onControl(receive);
    // Life the router would not see as a frame: the answer to the link's own idle probe, the peer's probe.
    link.onAlive?.(() => router.heard(link.peer));
    link.onClose((reason) => {
      router.unlinked(remote.id);
      log("info", `link to ${remote.id} closed: ${reason}`);
    });
    router.linked(remote.id);
    // A link to a peer we mean to talk to: start the session now unless packets are about to. Both ends
    // see the link open: the lower id starts; the other only when no handshake came within START_LATER_MS
    // (the lower may not mean to talk to us), so one handshake is made, not two crossing ones. We mean to
    // talk to an allow-listed peer, and to any peer we sent to within the idle timeout: the packets held
    // for this link may have expired (HOLD_MS) while it formed, and the session must not wait for more.
    const active = router.isActive(remote.id);
    if (inside.holds(remote.id) || sessions.isEstablished(remote.id) || !(active || admission.allow.has(remote.id))) return;
    if (this.o.self < remote.id) sessions.send(remote.id, new Uint8Array(0));
    else this.startLater.set(remote.id, Date.now() + (active ? START_LATER_MS : START_LATER_IDLE_MS));
  }

  /** A session with `peer` is established: its claims are checked, and it hears every trust record we know. */
  established(peer: NodeId, remote: PublicIdentity, claims: Uint8Array): void {
    const { admission, peers, overlay, log } = this.o;
    this.learn(remote);
    admission.takeCertificates(remote, claims);
    // A member's name and address come from its signed certificate, never from what it says.
    const b = admission.believe(peer, claims);
    const refused = peers.applyClaims(peer, b.claims, b.rules);
    if (b.subnets) peers.get(peer)!.subnets = b.subnets;
    overlay.greet(peer);
    if (refused) log("warn", `peer ${peer}: claim refused: ${refused}`);
    const p = peers.get(peer)!;
    log("info", `session with ${peer}${p.name ? ` (${p.name})` : ""} established${p.ipv4 ? `, ipv4 ${p.ipv4}` : ""}`);
  }

  /** Timers (every tick of the node): sessions started later, RTT pings, unmet allow-listed peers retried. */
  tick(now: number): void {
    const { sessions, links, router, admission, peers, prober } = this.o;
    for (const [id, at] of this.startLater) {
      if (now < at) continue;
      this.startLater.delete(id);
      if (!sessions.isEstablished(id) && !sessions.handshaking(id) && links.link(id)?.state === "open") sessions.send(id, new Uint8Array(0));
    }
    if (now - this.lastProbe < RTT_PROBE_EVERY_MS) return;
    this.lastProbe = now;
    // End-to-end RTT (and the relays on the way) for peers we talk to; links are probed by the router.
    // Allow-listed peers are retried until we first meet them (links open on demand after that and close
    // when idle); not by a relay: its members link to it, and most of a thousand may be offline.
    for (const p of peers.all()) {
      if (sessions.isEstablished(p.id)) {
        this.met.add(p.id);
        if (router.isActive(p.id)) void prober.ping(p.id);
      } else if (admission.allow.has(p.id) && !this.met.has(p.id)) {
        // Try a direct link, and meanwhile a session through a relay (keys from the relay's records).
        if (!this.o.relaying) links.connect(p.id);
        if (!p.pub) router.lookup(p.id);
        else if (router.hasPath(p.id) && !this.startLater.has(p.id)) sessions.send(p.id, new Uint8Array(0));
      }
    }
  }
}
