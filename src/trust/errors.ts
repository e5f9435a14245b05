// Trust errors: why a certificate, request, root or revocation was refused.
export type TrustErrorCode =
  | "malformed"
  | "bad-signature"
  | "wrong-network"
  | "wrong-node"
  | "not-yet-valid"
  | "expired"
  | "revoked"
  | "constraint"
  | "used"
  | "io";

export class TrustError extends Error {
  constructor(readonly code: TrustErrorCode, message: string) {
    super(message);
    this.name = "TrustError";
  }
}
