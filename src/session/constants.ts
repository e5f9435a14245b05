// Session timers and limits. Protocol constants follow WireGuard's (whitepaper §6.1); tuning ones below.
export interface Limits {
  /** Initiator starts a new handshake when its keypair is this old (ms); a responder that sends, keepaliveTimeout + rekeyTimeout later. */
  rekeyAfterTime: number;
  /** No keypair is used after this age (ms). */
  rejectAfterTime: number;
  /** Start a new handshake after sending this many packets on one keypair. */
  rekeyAfterMessages: number;
  /** Never send or accept beyond this counter on one keypair. */
  rejectAfterMessages: number;
  /** Wait this long for a response before sending a fresh initiation (ms, plus jitter). */
  rekeyTimeout: number;
  /** Give up on a handshake after trying for this long (ms). */
  rekeyAttemptTime: number;
  /** Send an empty packet when we received but sent nothing for this long (ms). */
  keepaliveTimeout: number;
}

export const WIREGUARD_LIMITS: Limits = {
  rekeyAfterTime: 120_000,
  rejectAfterTime: 180_000,
  rekeyAfterMessages: 2 ** 60, // counters are JS numbers: exact up to 2^53, far beyond any keypair's life
  rejectAfterMessages: 2 ** 53 - 2 ** 13 - 1,
  rekeyTimeout: 5_000,
  rekeyAttemptTime: 90_000,
  keepaliveTimeout: 10_000,
};

/** Random extra wait on each handshake retry (ms), so two sides do not retry in lockstep. */
export const REKEY_JITTER = 333;
/**
 * Handshake responses per second from one claimed source on one link, from one link, and for the whole
 * node (ML-DSA costs ~22 ms). Past half the node's budget an initiation needs a cookie (mac2).
 */
export const HANDSHAKES_PER_SECOND_PER_SOURCE = 4;
export const HANDSHAKES_PER_SECOND_PER_LINK = 8;
export const HANDSHAKES_PER_SECOND_TOTAL = 20;
/** How often the responder changes its cookie secret, and how long an initiator uses a cookie (ms; WireGuard's 120 s). */
export const COOKIE_SECRET_LIFETIME = 120_000;
export const COOKIE_LIFETIME = 120_000 - 5_000;
