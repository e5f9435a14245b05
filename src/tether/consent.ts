// ICE consent freshness (RFC 7675) paced for idle links. werift checks consent on each side of each pair
// every 4–6 s (a STUN binding request and its answer, MESSAGE-INTEGRITY and FINGERPRINT in JavaScript: 4
// packets per link every 5 s, a relay with a thousand idle members spends most of its idle CPU on them and
// the probes) and lets it expire 30 s after the last answer. Between two trellis nodes the link's own
// authenticated traffic shows the peer's consent as well as a STUN answer does: a fresh message that
// authenticated on the pair (Link.onAlive: data-channel messages under DTLS, tagged fast-channel frames,
// fresh probes and answers; never bare session data; none of them replayable), from the peer that holds
// the DTLS keys. So once a link is open its consent is kept here: fresh(), told of that traffic, refreshes
// it; only when nothing authenticated came for STUN_AFTER_MS (the router's idle exchange comes every
// ≤ 20 s, ../route/linkhealth.ts) does a STUN check go, werift's own, one per sweep; nothing for EXPIRE_MS
// (RFC 7675's 30 s), consent expires as werift would expire it: no more application data, ICE "failed",
// and the link closes. One sweep per process every SWEEP_MS looks at every link: no timer per link.
import type { Log } from "../log.ts";

export const STUN_AFTER_MS = 22_000;
export const EXPIRE_MS = 30_000;
export const SWEEP_MS = 2_000;

/** What this needs of werift's ICE connection (`pc.iceTransports[0].connection`). */
export interface ConsentConnection {
  state: string;
  consentFresh: boolean;
  nominated?: { localCandidate: unknown; remoteAddr: [string, number]; protocol: { request(req: unknown, addr: [string, number], key: Buffer, opts: { retransmissions: number; responseTimeout: number }): Promise<unknown> } };
  localUsername: string;
  remoteUsername: string;
  remotePassword: string;
  iceControlling: boolean;
  queryConsent: () => void;
  stopConsentLifecycle(): void;
  buildRequest(o: { nominate: boolean; localUsername: string; remoteUsername: string; iceControlling: boolean; localCandidate: unknown }): unknown;
  setState(state: string): void;
}

const pacers = new Set<ConsentPacer>();
let sweeper: ReturnType<typeof setInterval> | undefined;

export class ConsentPacer {
  private lastFresh: number;
  private asking = false;
  private stopped = false;

  constructor(private readonly conn: ConsentConnection, private readonly log: Log, private readonly label: string, private readonly now: () => number = Date.now) {
    this.lastFresh = now();
  }

  /** Take consent over from werift's loop (which werift restarts on a new nomination: that comes here too). */
  start(sweep = true): void {
    this.conn.stopConsentLifecycle();
    this.conn.consentFresh = true;
    this.lastFresh = this.now();
    this.conn.queryConsent = () => {
      this.conn.stopConsentLifecycle();
      this.conn.consentFresh = true;
      this.lastFresh = this.now();
    };
    if (!sweep) return;
    pacers.add(this);
    sweeper ??= setInterval(() => {
      const now = Date.now();
      for (const p of pacers) p.check(now);
    }, SWEEP_MS);
    (sweeper as { unref?: () => void }).unref?.();
  }

  stop(): void {
    this.stopped = true;
    pacers.delete(this);
    if (pacers.size === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  }

  /** Something authenticated arrived on the link: the peer consents. */
  fresh(): void {
    this.lastFresh = this.now();
  }

  /** The sweep: ask by STUN after STUN_AFTER_MS of nothing authenticated, expire after EXPIRE_MS. */
  check(now: number = this.now()): void {
    const c = this.conn;
    if (this.stopped || c.state === "closed" || c.state === "failed") return this.stop();
    const quiet = now - this.lastFresh;
    if (quiet >= EXPIRE_MS) {
      this.log("info", `${this.label}: no consent for ${Math.round(quiet / 1000)} s (nothing authenticated, no STUN answer): ICE failed`);
      c.consentFresh = false;
      this.stop();
      return c.setState("failed");
    }
    const n = c.nominated;
    if (quiet < STUN_AFTER_MS || this.asking || !n) return;
    this.asking = true;
    const request = c.buildRequest({ nominate: false, localUsername: c.localUsername, remoteUsername: c.remoteUsername, iceControlling: c.iceControlling, localCandidate: n.localCandidate });
    n.protocol
      .request(request, n.remoteAddr, Buffer.from(c.remotePassword, "utf8"), { retransmissions: 0, responseTimeout: 1_000 })
      .then(() => {
        if (c.nominated === n) this.lastFresh = this.now();
      })
      .catch(() => {}) // a lost check: the next sweep asks again
      .finally(() => (this.asking = false));
  }
}
