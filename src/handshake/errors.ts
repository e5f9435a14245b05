// Handshake errors: what went wrong, and whether trying again can help.
export type HandshakeErrorCode =
  | "malformed" // wrong length or layout: drop
  | "bad-mac1" // sender does not know our public key: drop silently
  | "decrypt" // AEAD failed: tampered or not for us
  | "refused" // accept() said no (not on the allow-list)
  | "replay" // initiation timestamp not newer than the last accepted one
  | "bad-signature" // ML-DSA signature over the transcript does not verify
  | "unknown-index" // response for a handshake we do not have
  | "unknown-peer"; // we do not know the responder's public identity

export class HandshakeError extends Error {
  constructor(readonly code: HandshakeErrorCode, message: string) {
    super(message);
    this.name = "HandshakeError";
  }
  /** Whether the initiator should retry with a fresh initiation (vs. give up on this peer). */
  get retry(): boolean {
    return this.code === "malformed" || this.code === "decrypt" || this.code === "unknown-index";
  }
}
